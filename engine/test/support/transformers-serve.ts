import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { PYTHON } from './tiny-model';

/**
 * A real OpenAI-compatible server for the tests: `transformers serve` from the pinned venv
 * (transformers 4.57.6 with fastapi, uvicorn and openai, engine/trainer/requirements.txt) serving
 * one local checkpoint on 127.0.0.1, on CPU. The model name in requests is the checkpoint's path.
 */
export interface TransformersServe {
  baseUrl: string;
  /** The name requests must carry: the served folder's path. */
  model: string;
  /** What the server printed so far (for failure messages). */
  log(): string;
  close(): Promise<void>;
}

/** Why `transformers serve` cannot run here, or undefined when it can. */
export function transformersServeUnavailable(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import torch, transformers, fastapi, uvicorn, openai'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} cannot be started (${r.error.message}); run npm run setup`;
  if (r.status !== 0) return `${PYTHON} lacks transformers serve's packages (fastapi, uvicorn, openai): ${r.stderr.trim().split('\n').pop()}; run npm run setup`;
  return undefined;
}

/**
 * Copies a checkpoint to `into` for serving: transformers serve samples only where the
 * checkpoint's generation_config.json says do_sample (a request's temperature alone does not turn
 * it on), as instruct checkpoints on the Hub do, so the copy says so. Returns `into`.
 */
export function servableCopy(modelDir: string, into: string): string {
  cpSync(modelDir, into, { recursive: true });
  const genPath = join(into, 'generation_config.json');
  writeFileSync(genPath, JSON.stringify({ ...JSON.parse(readFileSync(genPath, 'utf8')), do_sample: true }, null, 2));
  return into;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts the server and loads `modelDir` with one request. forceModel (default true): every request
 * gets that model whatever it names; false: a request's model names the folder to load, so a
 * round's trained checkpoint is served by its path (what `aries run` sends after training).
 */
export async function startTransformersServe(modelDir: string, options: { forceModel?: boolean; timeoutMs?: number } = {}): Promise<TransformersServe> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const port = await freePort();
  const args = ['-c', 'import sys; from transformers.commands.transformers_cli import main; sys.exit(main())', 'serve',
    '--host', '127.0.0.1', '--port', String(port), '--device', 'cpu', '--dtype', 'float32', ...(options.forceModel === false ? [] : ['--force_model', modelDir]), '--log_level', 'warning',
    // It unloads an idle model after model_timeout seconds (300 by default) and reloads it on demand.
    '--model_timeout', '86400'];
  const child: ChildProcess = spawn(PYTHON, args, {
    env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', OMP_NUM_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const keep = (d: Buffer): void => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const baseUrl = `http://127.0.0.1:${port}/v1`;
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // the whole group: uvicorn and generation threads
      } catch {
        child.kill('SIGKILL');
      }
      await exited;
    }
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`transformers serve exited with ${child.exitCode} before it was ready:\n${output}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(`transformers serve was not ready within ${timeoutMs / 1000} s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  // It loads the model on the first request, without a lock: concurrent first requests each start
  // from_pretrained and fail with HTTP 500 ("Cannot copy out of meta tensor"). One request first.
  const warm = await fetch(`${baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: modelDir, messages: [{ role: 'user', content: 'hello' }], max_tokens: 1, stream: true }),
  });
  const warmBody = await warm.text();
  if (!warm.ok) {
    await close();
    throw new Error(`transformers serve failed its first request (HTTP ${warm.status}: ${warmBody.slice(0, 300)}):\n${output}`);
  }
  return { baseUrl, model: modelDir, log: () => output, close };
}
