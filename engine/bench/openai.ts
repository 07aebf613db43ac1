import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { GREEDY, type GenerationRequest } from '../src/generation/backend';
import { OpenAIBackend } from '../src/generation/openai/backend';
import { fmt, interleaved, median } from './measure';
import { atLeast, info, type Finding, type SectionResult } from './report';

/**
 * The OpenAI-compatible backend against a loopback server (another process) that answers each
 * request in L ms with at most C at once. The best any client can do is C / L requests per
 * second; the engine (maxConcurrency C, chat mode, no streaming) should reach 90 % of it. Engine
 * CPU per request is process.cpuUsage() over the run divided by the requests.
 */

export interface OpenAIPlan {
  reps: number;
  /** `clients`: also time plain fetch and node:http clients on the same server (what the HTTP stack alone costs). */
  cases: { latencyMs: number; concurrency: number; requests: number; clients?: boolean }[];
}

const SECTION = 'openai';

interface Run {
  rps: number;
  cpuUsPerRequest: number;
  maxInFlight: number;
}

export async function openaiBench(plan: OpenAIPlan, log: (line: string) => void): Promise<SectionResult> {
  const findings: Finding[] = [];
  const notes: string[] = [
    `- Server: engine/test/support/loopback-openai-server.ts in a child process, behind a FIFO queue of C slots of exactly L ms each (engine/bench/openai-server.ts). ` +
      `Engine: OpenAIBackend, chat mode, maxConcurrency C, ≤ 8 new tokens per request, one generate() call with all requests; median of ${plan.reps}. ` +
      `CPU is the engine process's user + system time (process.cpuUsage) over the run, per request.`,
  ];
  for (const c of plan.cases) {
    log(`  L ${c.latencyMs} ms, C ${c.concurrency}: ${c.requests} requests × ${plan.reps}${c.clients ? ', with plain fetch and node:http clients' : ''}`);
    const server = await startServer(c.latencyMs, c.concurrency);
    try {
      const backend = new OpenAIBackend({ baseUrl: server.baseUrl, model: 'bench', maxConcurrency: c.concurrency, requestTimeoutMs: 60_000 });
      const requests = Array.from({ length: Math.max(c.requests, c.concurrency) }, (_, i): GenerationRequest => ({ key: `r${i}`, prompt: `question ${i}: what is ${i} + ${i}?`, sampling: { ...GREEDY, maxNewTokens: 8 } }));
      const plain = plainClients(server.baseUrl, c.concurrency);
      const measure = async (send: (n: number) => Promise<unknown>): Promise<Run> => {
        const cpu = process.cpuUsage();
        const started = performance.now();
        await send(c.requests);
        const seconds = (performance.now() - started) / 1000;
        const used = process.cpuUsage(cpu);
        const stats = await server.stats();
        if (stats.requests !== c.requests) throw new Error(`openai bench: sent ${c.requests} requests; the server answered ${stats.requests}`);
        return { rps: c.requests / seconds, cpuUsPerRequest: (used.user + used.system) / c.requests, maxInFlight: stats.maxInFlight };
      };
      const engine = (n: number) => backend.generate(requests.slice(0, n));
      // Warm-up: C connections open (a steady state, as a long collection has), JIT.
      await engine(c.concurrency);
      if (c.clients) {
        await plain.fetch(c.concurrency);
        await plain.http(c.concurrency);
      }
      await server.stats();
      const runs = await interleaved(plan.reps, {
        engine: () => measure(engine),
        ...(c.clients ? { fetch: () => measure(plain.fetch), http: () => measure(plain.http) } : {}),
      } as Record<string, () => Promise<Run>>);
      await backend.close();
      plain.close();
      const ideal = (c.concurrency * 1000) / c.latencyMs;
      const e = runs.engine!;
      const rps = median(e.map((r) => r.rps));
      const cpuUs = median(e.map((r) => r.cpuUsPerRequest));
      const subject = `L ${c.latencyMs} ms, C ${c.concurrency}`;
      findings.push(atLeast(SECTION, `${subject}: requests/s`, `${fmt.num(rps)} req/s`, `C/L = ${fmt.num(ideal)} req/s`, rps / ideal, 0.9));
      findings.push(info(SECTION, `${subject}: engine CPU per request`, `${fmt.num(cpuUs / 1000, 3)} ms`, `${fmt.num((cpuUs * rps) / 1e6, 2)} cores busy`));
      const line = [`- L ${c.latencyMs} ms, C ${c.concurrency}, ${c.requests} requests: engine ${e.map((r) => fmt.num(r.rps)).join(', ')} req/s; most in flight at the server ${Math.max(...e.map((r) => r.maxInFlight))}.`];
      for (const [name, label] of [['fetch', 'plain fetch()'], ['http', 'node:http keep-alive']] as const) {
        const r = runs[name];
        if (!r) continue;
        const cpu = median(r.map((x) => x.cpuUsPerRequest));
        const plainRps = median(r.map((x) => x.rps));
        findings.push(info(SECTION, `${subject}: ${label} alone`, `${fmt.num(plainRps)} req/s, ${fmt.num(cpu / 1000, 3)} ms CPU`, `C/L = ${fmt.num(ideal)} req/s`, plainRps / ideal));
        line.push(`${label} (same concurrency, same body, JSON parsed): ${r.map((x) => fmt.num(x.rps)).join(', ')} req/s, ${fmt.num(cpu / 1000, 3)} ms CPU per request.`);
      }
      notes.push(line.join(' '));
    } finally {
      server.close();
    }
  }
  return { findings, notes };
}

/** The HTTP stack alone, as references: C workers posting the engine's chat body with fetch, or with node:http and a keep-alive agent. */
function plainClients(baseUrl: string, concurrency: number): { fetch: (n: number) => Promise<void>; http: (n: number) => Promise<void>; close: () => void } {
  const url = `${baseUrl}/chat/completions`;
  const body = (i: number) => JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: `question ${i}: what is ${i} + ${i}?` }], max_tokens: 8, temperature: 0, top_p: 1 });
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const pool = async (n: number, one: (i: number) => Promise<void>) => {
    let next = 0;
    const worker = async () => {
      while (next < n) await one(next++);
    };
    await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
  };
  return {
    fetch: (n) =>
      pool(n, async (i) => {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(i) });
        await res.json();
      }),
    http: (n) =>
      pool(
        n,
        (i) =>
          new Promise<void>((resolve, reject) => {
            const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => {
                JSON.parse(Buffer.concat(chunks).toString('utf8'));
                resolve();
              });
              res.on('error', reject);
            });
            req.on('error', reject);
            req.end(body(i));
          }),
      ),
    close: () => agent.destroy(),
  };
}

interface ServerHandle {
  baseUrl: string;
  stats(): Promise<{ requests: number; maxInFlight: number }>;
  close(): void;
}

async function startServer(latencyMs: number, concurrency: number): Promise<ServerHandle> {
  const child: ChildProcessByStdio<Writable, Readable, null> = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'openai-server.ts'), String(latencyMs), String(concurrency)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: Interface = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('openai bench: the loopback server did not answer within 30 s')), 30_000);
      waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  const first = JSON.parse(await next()) as { baseUrl: string };
  return {
    baseUrl: first.baseUrl,
    async stats() {
      const answer = next();
      child.stdin.write('stats\n');
      return JSON.parse(await answer) as { requests: number; maxInFlight: number };
    },
    close() {
      child.stdin.end();
    },
  };
}
