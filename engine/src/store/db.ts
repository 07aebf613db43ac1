import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { EngineError } from '../errors';
import { MIGRATIONS, type Migration } from './migrations';

export type Db = Database.Database;

export interface OpenOptions {
  /** Milliseconds a writer waits for another writer before SQLITE_BUSY (review UI vs generation). */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

/**
 * Opens (creating if needed) a project database: WAL journal so readers never block the writer,
 * foreign keys on, synchronous=NORMAL (a committed transaction survives a killed process; use
 * `PRAGMA synchronous=FULL` through ARIES_SQLITE_SYNC=FULL to also survive power loss), then
 * applies pending migrations.
 */
export function openDb(path: string, options: OpenOptions = {}): Db {
  if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
  let db: Db;
  try {
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  } catch (err) {
    throw new EngineError('STORE', `${path}: cannot open the database (${(err as Error).message})`, 'check the path and its permissions');
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? 10_000;
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  if (!options.readonly) {
    useWal(db, busyTimeoutMs);
    db.pragma(`synchronous = ${process.env.ARIES_SQLITE_SYNC === 'FULL' ? 'FULL' : 'NORMAL'}`);
  }
  db.pragma('foreign_keys = ON');
  if (!options.readonly) migrate(db, MIGRATIONS, path);
  return db;
}

/**
 * Switches a database to WAL, waiting out the other engines that do the same. The switch reads the
 * header and then writes it under one statement: on a new project opened by several engines at
 * once (in rollback mode until one of them switches it) that upgrade from a read to a write lock
 * fails with SQLITE_BUSY at once, without the busy handler, so it is retried here until the busy
 * timeout. A database already in WAL needs no write.
 */
function useWal(db: Db, busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
    try {
      if (db.pragma('journal_mode', { simple: true }) === 'wal') return;
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      Atomics.wait(SLEEP, 0, 0, wait + Math.random() * wait);
    }
  }
}

const SLEEP = new Int32Array(new SharedArrayBuffer(4));

export function schemaVersion(db: Db): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null } | undefined;
  return row?.v ?? 0;
}

export function migrate(db: Db, migrations: Migration[], path = 'database'): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const current = schemaVersion(db);
  const newest = migrations.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new EngineError('STORE', `${path}: schema version ${current} is newer than this ARIES Studio knows (${newest})`, 'update ARIES Studio');
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    // Under the write lock from BEGIN, and checked again there: two engines opening a new project
    // at the same moment must not both apply the same migration.
    db.transaction(() => {
      if (schemaVersion(db) >= m.version) return;
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, now());
    }).immediate();
  }
}

export function now(): string {
  return new Date().toISOString();
}

/** JSON column helpers: parse what we wrote, with the column named in the error if it is corrupt. */
export function parseJson<T>(text: string | null, what: string): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new EngineError('STORE', `${what}: stored JSON is corrupt`, 'run `aries stats --check` and restore from a backup if it fails');
  }
}
