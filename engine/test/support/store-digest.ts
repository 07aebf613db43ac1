import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';

/**
 * What "nothing changed" means in the fault tests: the same rows in every table of the project
 * database (a logical digest: checkpoints move bytes between aries.db and its WAL without changing
 * rows), and the same files under the project folder (the database files excepted).
 */

export const DB_FILES = new Set(['aries.db', 'aries.db-wal', 'aries.db-shm', 'aries.db-journal']);

/** sha256 over every row of every ordinary table, table by table, rows sorted. */
export function dbDigest(path: string): string {
  if (!existsSync(path)) return 'no database';
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const hash = createHash('sha256');
    const tables = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string; sql: string }[];
    for (const t of tables) {
      if (/^CREATE VIRTUAL/i.test(t.sql)) continue; // its shadow tables hold the rows
      const rows = db.prepare(`SELECT * FROM "${t.name}"`).raw().all().map((r) => JSON.stringify(r, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v)));
      rows.sort();
      hash.update(`${t.name}\n${t.sql}\n${rows.join('\n')}\n`);
    }
    return hash.digest('hex');
  } finally {
    db.close();
  }
}

/** Row counts per table (for messages and for all-or-nothing checks). */
export function tableCounts(path: string, tables: string[]): Record<string, number> {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return Object.fromEntries(tables.map((t) => [t, (db.prepare(`SELECT COUNT(*) AS n FROM "${t}"`).get() as { n: number }).n]));
  } finally {
    db.close();
  }
}

export function integrity(path: string): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return String(db.pragma('integrity_check', { simple: true }));
  } finally {
    db.close();
  }
}

/** sha256 over the relative path and content of every file under `root` (links by their target), database files excepted. */
export function folderDigest(root: string): string {
  const hash = createHash('sha256');
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const st = lstatSync(full);
      const rel = relative(root, full);
      if (st.isSymbolicLink()) hash.update(`link ${rel} -> ${readlinkSync(full)}\n`);
      else if (st.isDirectory()) {
        hash.update(`dir ${rel}\n`);
        walk(full);
      } else if (!DB_FILES.has(name)) hash.update(`file ${rel} ${createHash('sha256').update(readFileSync(full)).digest('hex')}\n`);
    }
  };
  walk(root);
  return hash.digest('hex');
}

/** Every file under `root` whose name matches, as paths relative to root. */
export function findFiles(root: string, match: (name: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (lstatSync(full).isDirectory()) walk(full);
      else if (match(name)) out.push(relative(root, full));
    }
  };
  walk(root);
  return out.sort();
}
