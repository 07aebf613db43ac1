import { createInterface } from 'node:readline';
import { type Behaviour, startLoopbackServer } from '../test/support/loopback-openai-server';

/**
 * Child process for the OpenAI-compatible benchmark: the test suite's loopback server, made to
 * behave like a server that handles at most C requests at once, each in exactly L ms (a FIFO
 * queue in front of C slots). It runs in its own process so the engine's CPU time is the
 * engine's alone.
 *   node --import tsx engine/bench/openai-server.ts L C
 * Prints {"baseUrl": ...} once listening; answers "stats" lines with {"requests", "maxInFlight"}
 * and resets the counters; exits when stdin closes.
 */
async function main(): Promise<void> {
  const latencyMs = Number(process.argv[2]);
  const limit = Number(process.argv[3]);
  const server = await startLoopbackServer();
  const slots = new Array<number>(limit).fill(0);
  let answered = 0;
  const limited = (): Behaviour => {
    const now = performance.now();
    let slot = 0;
    for (let i = 1; i < limit; i++) if (slots[i]! < slots[slot]!) slot = i;
    const end = Math.max(now, slots[slot]!) + latencyMs;
    slots[slot] = end;
    answered++;
    return { kind: 'default', delayMs: end - now };
  };
  server.behave(limited);
  process.stdout.write(`${JSON.stringify({ baseUrl: server.baseUrl })}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() !== 'stats') return;
    process.stdout.write(`${JSON.stringify({ requests: answered, maxInFlight: server.maxInFlight })}\n`);
    answered = 0;
    server.reset(); // also forgets the recorded requests, so memory stays flat
    server.behave(limited);
  });
  lines.on('close', () => void server.close().then(() => process.exit(0)));
}

void main();
