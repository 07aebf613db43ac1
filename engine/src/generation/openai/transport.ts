import http from 'node:http';
import https from 'node:https';

/**
 * One POST over node:http / node:https through a keep-alive connection pool. The engine used
 * fetch() before; at thousands of small requests a second, undici's per-request cost was the
 * bottleneck (docs/benchmarks.md: 1.2 ms of CPU per request against 0.54 ms here), so the model
 * clients speak plain node:http. What the clients need of a response is `RawResponse`.
 */
export interface RawResponse {
  status: number;
  statusText: string;
  header(name: string): string | undefined;
  /** The whole body as UTF-8 text. */
  text(): Promise<string>;
  /** The body piece by piece; leaving the loop early does not close the connection. */
  chunks(): AsyncIterable<Uint8Array>;
  /** Reads and drops what is left of the body, so the connection can serve the next request. */
  drain(): void;
  /** Closes the connection (a body that will not be read to the end). */
  destroy(): void;
}

export interface PostOptions {
  headers: Record<string, string>;
  body: string;
  /** Aborting destroys the request (and its connection) at once. */
  signal?: AbortSignal;
  /**
   * The longest silence on the connection, waiting for the answer or between two pieces of it;
   * then `onTimeout` runs and the request is destroyed (post, text() or chunks() reject).
   */
  idleTimeoutMs: number;
  onTimeout: () => void;
}

/** A pool of keep-alive connections for one client; `maxSockets` bounds the connections per host. */
export class Transport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(maxSockets: number) {
    // Idle connections are unref'd by the agent, so a pool never keeps the process alive.
    const options = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
    this.httpAgent = new http.Agent(options);
    this.httpsAgent = new https.Agent(options);
  }

  post(url: string, options: PostOptions): Promise<RawResponse> {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const request = secure ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(
        target,
        {
          method: 'POST',
          agent: secure ? this.httpsAgent : this.httpAgent,
          headers: { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) },
        },
        (res) => resolve(wrap(res)),
      );
      // A socket timeout rather than a timer: one per connection, and it measures silence, so a
      // long stream that keeps sending is never cut.
      req.setTimeout(options.idleTimeoutMs, () => {
        options.onTimeout();
        req.destroy();
      });
      // Not http.request's `signal` option: that destroys the request with an AbortError that can
      // surface as an uncaught exception once the caller has stopped reading the response.
      const { signal } = options;
      if (signal !== undefined) {
        const abort = () => {
          req.destroy();
          reject(new Error('the request was aborted'));
        };
        if (signal.aborted) {
          abort();
          return;
        }
        signal.addEventListener('abort', abort, { once: true });
        req.on('close', () => signal.removeEventListener('abort', abort));
      }
      req.on('error', reject);
      // A destroyed request ends without 'error'; without this the promise would never settle.
      req.on('close', () => reject(new Error('the connection closed before the answer began')));
      req.end(options.body);
    });
  }

  /** Closes every pooled connection. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function wrap(res: http.IncomingMessage): RawResponse {
  // Reading surfaces its own errors (text() and chunks() reject); this keeps an error that comes
  // after the client stopped reading (it aborted the request) from going uncaught.
  res.on('error', () => undefined);
  return {
    status: res.statusCode ?? 0,
    statusText: res.statusMessage ?? '',
    header(name) {
      const value = res.headers[name.toLowerCase()];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    text() {
      // Listeners rather than an async iterator: cheaper, and this runs once per request.
      return new Promise((resolve, reject) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
        res.on('error', reject);
        res.on('close', () => {
          if (!res.complete) reject(new Error('the connection closed before the answer was complete'));
        });
      });
    },
    chunks() {
      return res.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
    },
    drain() {
      res.resume();
    },
    destroy() {
      res.destroy();
    },
  };
}
