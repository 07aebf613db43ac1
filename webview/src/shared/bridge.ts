/**
 * The webview side of a panel's message protocol: typed requests with responses, and
 * notifications from the host. Each panel declares its own map in its protocol.ts.
 * (acquireVsCodeApi is provided by VS Code to webviews; there is no other way to talk to the host.)
 */
import { showControls } from './visible';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

export type RequestMap = Record<string, [unknown, unknown]>;

export interface RequestMessage<M extends RequestMap, K extends keyof M = keyof M> {
  type: 'request';
  id: number;
  method: K;
  params: M[K][0];
}

export type ResponseMessage = { type: 'response'; id: number; result: unknown } | { type: 'response'; id: number; error: string };

export class HostBridge<M extends RequestMap, N extends { kind: string }> {
  private readonly api: VsCodeApi = acquireVsCodeApi();
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners: ((n: N) => void)[] = [];

  constructor() {
    window.addEventListener('message', (event: MessageEvent<unknown>) => {
      const msg = event.data as ResponseMessage | { type: 'notification'; notification: N } | undefined;
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'response') {
        const waiter = this.pending.get(msg.id);
        if (!waiter) return;
        this.pending.delete(msg.id);
        if ('error' in msg) waiter.reject(new Error(msg.error));
        else waiter.resolve(msg.result);
      } else if (msg.type === 'notification') {
        for (const l of this.listeners) l(msg.notification);
      }
    });
  }

  request<K extends keyof M & string>(method: K, params: M[K][0]): Promise<M[K][1]> {
    const id = this.nextId++;
    const message: RequestMessage<M, K> = { type: 'request', id, method, params };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.api.postMessage(message);
    });
  }

  onNotification(listener: (n: N) => void): void {
    this.listeners.push(listener);
  }

  /** Tells the host the page is ready for its first notification. */
  ready(): void {
    this.api.postMessage({ type: 'ready' });
  }

  getState<T>(): T | undefined {
    return this.api.getState() as T | undefined;
  }

  setState<T>(state: T): void {
    this.api.setState(state);
  }
}

/** Creates an element with text (never HTML) and classes. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = showControls(text);
  return node;
}
