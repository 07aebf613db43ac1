import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { EngineError, badInput, didYouMean } from '../errors';
import type { ChatMessage, PromptInput } from '../generation/backend';
import { type Db, now } from '../store/db';
import type { ImportResult } from '../protocol/engine-types';
export type { ImportResult } from '../protocol/engine-types';

interface ParsedPrompt {
  id: string;
  prompt: PromptInput;
  reference: string | null;
  hash: string;
  where: string;
}

const MAX_LINE_BYTES = 4 * 1024 * 1024;
const ROLES = new Set(['system', 'user', 'assistant']);
/** What a prompt row may hold; "meta" carries the user's own fields and is not read. */
const ROW_KEYS = ['id', 'prompt', 'messages', 'reference', 'answer', 'meta'];

export function importPrompts(db: Db, file: string, split = 'train'): ImportResult {
  return importPromptFiles(db, [file], split)[0]!;
}

/**
 * Several files as one import: every file is read and checked first, then all rows go in one
 * transaction, so a bad file (the second of two, say) imports nothing from any of them, and the
 * error names that file. An id used by two files with different content is refused the same way.
 */
export function importPromptFiles(db: Db, files: readonly string[], split = 'train'): ImportResult[] {
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(split)) throw badInput(`split "${split}" is not a simple name`, 'use letters, digits, - or _ (e.g. train, heldout)');
  if (files.length === 0) throw badInput('no files to import', 'name one or more .jsonl or .json files of prompts');
  const nothing = files.length > 1 ? `; nothing was imported from any of the ${files.length} files` : '';
  const parsed: ParsedPrompt[][] = [];
  const firstById = new Map<string, ParsedPrompt>();
  for (const file of files) {
    let rows: ParsedPrompt[];
    try {
      rows = parseFile(file);
    } catch (err) {
      throw withNothingImported(err, nothing);
    }
    for (const r of rows) {
      const other = firstById.get(r.id);
      if (other && other.hash !== r.hash) throw badInput(`${r.where}: id "${r.id}" is also used by ${other.where} with different content${nothing}`, 'ids must be unique across the files imported together');
      if (!other) firstById.set(r.id, r);
    }
    parsed.push(rows);
  }
  const byId = db.prepare('SELECT content_hash, source FROM prompts WHERE id = ?');
  const byHash = db.prepare('SELECT id FROM prompts WHERE content_hash = ? LIMIT 1');
  const insert = db.prepare(
    'INSERT INTO prompts (id, content_hash, prompt_json, search_text, reference, split, source, seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const results: ImportResult[] = [];
  // IMMEDIATE: it reads (ids, the next seq) then writes; see openProject.
  db.transaction(() => {
    let seq = ((db.prepare('SELECT MAX(seq) AS m FROM prompts').get() as { m: number | null }).m ?? 0) + 1;
    parsed.forEach((rows, f) => {
      let added = 0;
      for (const r of rows) {
        const existing = byId.get(r.id) as { content_hash: string; source: string } | undefined;
        if (existing) {
          if (existing.content_hash !== r.hash) {
            throw badInput(`${r.where}: id "${r.id}" was already imported with different content (from ${existing.source})${nothing}`, 'give the row a new id or remove it');
          }
          continue;
        }
        if (r.id.startsWith('sha256:') && byHash.get(r.hash)) continue;
        insert.run(r.id, r.hash, JSON.stringify(r.prompt), searchText(r.prompt), r.reference, split, r.where, seq++, now());
        added++;
      }
      results.push({ file: files[f]!, split, added, unchanged: rows.length - added, total: rows.length });
    });
  }).immediate();
  return results;
}

/** The same error, saying that the other files were not imported either. */
function withNothingImported(err: unknown, nothing: string): unknown {
  return nothing !== '' && err instanceof EngineError ? new EngineError(err.code, `${err.detail}${nothing}`, err.hint) : err;
}

function parseFile(file: string): ParsedPrompt[] {
  let bytes: Buffer;
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
    bytes = readFileSync(file);
  } catch (err) {
    throw badInput(`${file}: cannot read (${(err as Error).message})`, 'pass a .jsonl or .json file of prompts');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const line = firstInvalidUtf8Line(bytes);
    throw badInput(`${file}:${line}: not valid UTF-8`, 're-save the file as UTF-8');
  }
  const out: ParsedPrompt[] = [];
  const seen = new Map<string, ParsedPrompt>();
  const add = (value: unknown, where: string): void => {
    const p = parseRow(value, where);
    const dup = seen.get(p.id);
    if (dup) {
      if (dup.hash === p.hash) return; // the same row twice: keep one
      throw badInput(`${where}: id "${p.id}" is also used by ${dup.where} with different content`, 'ids must be unique within a file');
    }
    seen.set(p.id, p);
    out.push(p);
  };
  if (extname(file).toLowerCase() === '.json') {
    const value = parseJson(text, file);
    const list = Array.isArray(value) ? value : typeof value === 'object' && value !== null && Array.isArray((value as { prompts?: unknown }).prompts) ? (value as { prompts: unknown[] }).prompts : null;
    if (!list) throw badInput(`${file}: expected a JSON array of prompt objects (or {"prompts": [...]})`);
    list.forEach((v, i) => add(v, `${file}: item ${i + 1}`));
  } else {
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      const where = `${file}:${i + 1}`;
      if (!line.trim()) return;
      if (Buffer.byteLength(line) > MAX_LINE_BYTES) throw badInput(`${where}: line is longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB`, 'split or shorten the prompt');
      add(parseJson(line, where), where);
    });
  }
  if (out.length === 0) throw badInput(`${file}: no prompts in the file`);
  return out;
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = err instanceof RangeError ? 'nesting is too deep' : (err as Error).message;
    throw badInput(`${where}: invalid JSON (${message})`);
  }
}

function parseRow(value: unknown, where: string): ParsedPrompt {
  if (Array.isArray(value)) {
    throw badInput(`${where}: a JSON array where a prompt object belongs`, 'a .jsonl file holds one object per line ({"prompt": ...}); to import an array of prompts, name the file .json');
  }
  if (typeof value !== 'object' || value === null) throw badInput(`${where}: each prompt must be a JSON object ({"prompt": ...}), got ${value === null ? 'null' : typeof value}`);
  const row = value as Record<string, unknown>;
  for (const key of Object.keys(row)) {
    if (ROW_KEYS.includes(key)) continue;
    const near = didYouMean(key, ROW_KEYS.filter((k) => k !== 'meta'));
    throw badInput(
      `${where}: unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ''}`,
      `a prompt row has ${ROW_KEYS.map((k) => `"${k}"`).join(', ')}; put anything else under "meta", which is kept out of the prompt`,
    );
  }
  const source = row.prompt ?? row.messages;
  if (source === undefined) throw badInput(`${where}: missing "prompt" (a string) or "messages" (a chat list)`);
  const prompt = parsePrompt(source, where, row.prompt !== undefined ? 'prompt' : 'messages');
  const refValue = row.reference ?? row.answer;
  let reference: string | null = null;
  if (refValue !== undefined && refValue !== null) {
    if (typeof refValue !== 'string' && typeof refValue !== 'number') throw badInput(`${where}: "reference" must be a string or a number, got ${typeof refValue}`);
    reference = wellFormed(String(refValue), where, 'reference');
  }
  const hash = createHash('sha256').update(JSON.stringify(prompt)).update('\0').update(reference ?? '').digest('hex');
  let id: string;
  if (row.id === undefined || row.id === null) id = `sha256:${hash.slice(0, 16)}`;
  else if ((typeof row.id === 'string' && row.id.length > 0 && row.id.length <= 200) || (typeof row.id === 'number' && Number.isFinite(row.id))) id = wellFormed(String(row.id), where, 'id');
  else throw badInput(`${where}: "id" must be a non-empty string (≤ 200 characters) or a number`);
  return { id, prompt, reference, hash, where };
}

/** JSON can spell an unpaired UTF-16 surrogate ("\ud83d"); no tokenizer or UTF-8 file can hold it, so it is refused here, with its line. */
function wellFormed(text: string, where: string, key: string): string {
  const at = text.search(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
  if (at >= 0) throw badInput(`${where}: "${key}" has an unpaired surrogate (U+${text.charCodeAt(at).toString(16).toUpperCase()}) at character ${at}`, 'the text must be valid Unicode');
  return text;
}

function parsePrompt(source: unknown, where: string, key: string): PromptInput {
  if (typeof source === 'string') {
    if (!source.trim()) throw badInput(`${where}: "${key}" is empty`);
    return wellFormed(source, where, key);
  }
  if (!Array.isArray(source) || source.length === 0) throw badInput(`${where}: "${key}" must be a non-empty string or a non-empty list of messages`);
  return source.map((m, i): ChatMessage => {
    if (typeof m !== 'object' || m === null) throw badInput(`${where}: ${key}[${i}] must be an object with "role" and "content"`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || !ROLES.has(role)) throw badInput(`${where}: ${key}[${i}].role must be "system", "user" or "assistant", got ${JSON.stringify(role)}`);
    if (typeof content !== 'string') throw badInput(`${where}: ${key}[${i}].content must be a string`);
    return { role: role as ChatMessage['role'], content: wellFormed(content, where, `${key}[${i}].content`) };
  });
}

export function searchText(prompt: PromptInput): string {
  return typeof prompt === 'string' ? prompt : prompt.map((m) => m.content).join('\n');
}

function firstInvalidUtf8Line(bytes: Buffer): number {
  let line = 1;
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, i));
      } catch {
        return line;
      }
      line++;
      start = i + 1;
    }
  }
  return line;
}
