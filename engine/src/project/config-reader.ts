import { badInput } from '../errors';

/**
 * Reads an untrusted JSON value field by field, so every error names the file and the key path
 * ("aries.json: generation.refinements must be an integer from 0 to 16, got \"3\"").
 * Used for the project file, settings and webview messages alike.
 */
export class JsonReader {
  constructor(
    private readonly source: string,
    private readonly value: unknown,
    private readonly path: string = '',
  ) {}

  private where(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  private fail(key: string, expected: string, got: unknown): never {
    const shown = JSON.stringify(got);
    throw badInput(`${this.source}: ${this.where(key)} must be ${expected}, got ${shown === undefined ? 'nothing' : shown.slice(0, 80)}`);
  }

  private raw(key: string): unknown {
    if (typeof this.value !== 'object' || this.value === null || Array.isArray(this.value)) {
      throw badInput(`${this.source}: ${this.path || 'the top level'} must be a JSON object`);
    }
    return (this.value as Record<string, unknown>)[key];
  }

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  /** Present with a value other than null. */
  hasValue(key: string): boolean {
    const v = this.raw(key);
    return v !== undefined && v !== null;
  }

  /** Keys present that the schema does not know: a typo should not be silently ignored. */
  rejectUnknown(known: readonly string[]): void {
    if (typeof this.value !== 'object' || this.value === null) return;
    for (const key of Object.keys(this.value)) {
      if (!known.includes(key)) throw badInput(`${this.source}: unknown key ${this.where(key)}`, `known keys here: ${known.join(', ')}`);
    }
  }

  object(key: string): JsonReader {
    const v = this.raw(key);
    if (v === undefined) return new JsonReader(this.source, {}, this.where(key));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'an object', v);
    return new JsonReader(this.source, v, this.where(key));
  }

  string(key: string, fallback: string): string {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'string') this.fail(key, 'a string', v);
    return v;
  }

  optionalString(key: string): string | null {
    const v = this.raw(key);
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') this.fail(key, 'a string or null', v);
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) this.fail(key, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`, v);
    return v as T;
  }

  number(key: string, fallback: number, min = -Infinity, max = Infinity): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(key, `a number from ${min} to ${max}`, v);
    return v;
  }

  integer(key: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(key, `an integer from ${min} to ${max}`, v);
    return v;
  }

  /** An integer, or null when the key is absent or null ("use the default"). */
  optionalInteger(key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | null {
    const v = this.raw(key);
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(key, `an integer from ${min} to ${max}, or null`, v);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v);
    return v;
  }

  stringList(key: string, fallback: string[]): string[] {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.fail(key, 'a list of strings', v);
    return v as string[];
  }

  optionalStringList(key: string): string[] | null {
    const v = this.raw(key);
    if (v === undefined || v === null) return null;
    return this.stringList(key, []);
  }

  /** A flat object of scalar values (trainer flags). */
  scalars(key: string): Record<string, string | number | boolean> {
    const v = this.raw(key);
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'an object', v);
    for (const [k, x] of Object.entries(v)) {
      if (!['string', 'number', 'boolean'].includes(typeof x)) this.fail(`${key}.${k}`, 'a string, number or boolean', x);
    }
    return v as Record<string, string | number | boolean>;
  }
}
