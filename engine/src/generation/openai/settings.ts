import { badInput } from '../../errors';
import { type Logger, silentLogger } from '../../log';
import type { HttpClientSettings } from './http';
import { DEFAULT_RETRY, type RetryPolicy } from './retry';

/** Options every HTTP model client takes (the generation backend and the reward-model scorer). */
export interface HttpOptions {
  /** Name of the environment variable holding the API key; default OPENAI_API_KEY. Unset or empty: no Authorization header. */
  apiKeyEnv?: string;
  /** The longest silence in one attempt, ms: waiting for the answer, or between two pieces of a stream. */
  requestTimeoutMs?: number;
  /** Attempts and backoff; see RetryPolicy. */
  retry?: Partial<RetryPolicy>;
  logger?: Logger;
}

export const DEFAULT_API_KEY_ENV = 'OPENAI_API_KEY';

/** Checks the options and fills in defaults; BAD_INPUT names the setting and the value. */
export function httpSettings(options: HttpOptions, who: string, model: string, activity: string, defaultTimeoutMs: number, maxConnections: number): HttpClientSettings {
  const apiKeyEnv = options.apiKeyEnv ?? DEFAULT_API_KEY_ENV;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(apiKeyEnv)) {
    // Not echoed: a value here that is not a name is most likely the key itself.
    throw badInput(`${who}: apiKeyEnv is not an environment variable name (letters, digits, _)`, 'give the NAME of the variable that holds the key (e.g. OPENAI_API_KEY), never the key itself');
  }
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  positiveInt(retry.maxAttempts, `${who}: retry.maxAttempts`);
  nonNegative(retry.backoffBaseMs, `${who}: retry.backoffBaseMs`);
  nonNegative(retry.backoffMaxMs, `${who}: retry.backoffMaxMs`);
  nonNegative(retry.maxRetryWaitMs, `${who}: retry.maxRetryWaitMs`);
  const requestTimeoutMs = options.requestTimeoutMs ?? defaultTimeoutMs;
  if (!(requestTimeoutMs > 0) || !Number.isFinite(requestTimeoutMs)) throw badInput(`${who}: requestTimeoutMs must be a positive number of milliseconds, got ${requestTimeoutMs}`);
  return { apiKeyEnv, requestTimeoutMs, retry, logger: options.logger ?? silentLogger, model, activity, maxConnections };
}

/** An http(s) URL without trailing slashes. */
export function baseUrl(value: string, who: string, example: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw badInput(`${who}: base URL '${value}' is not a URL`, `give one like ${example}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badInput(`${who}: base URL '${value}' is not http(s)`, `give one like ${example}`);
  if (url.search !== '' || url.hash !== '') throw badInput(`${who}: base URL '${value}' has a query or fragment`, `give one like ${example}`);
  return value.replace(/\/+$/, '');
}

export function modelName(value: string, who: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw badInput(`${who}: the model name is empty`, 'give the name the server serves (GET <base URL>/models lists them)');
  return value;
}

export function positiveInt(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw badInput(`${what} must be a whole number ≥ 1, got ${value}`);
  return value;
}

function nonNegative(value: number, what: string): void {
  if (!(value >= 0) || !Number.isFinite(value)) throw badInput(`${what} must be a number ≥ 0, got ${value}`);
}
