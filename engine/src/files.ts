import { writeSync } from 'node:fs';

/**
 * Writes all of `text` at the file's position. writeSync may write less than asked (a nearly full
 * disk, a file-size limit): it loops, so the next write reports the error instead of a short file.
 * Used by the export's atomic writes and the trainer's log.
 */
export function writeAll(fd: number, text: string, path: string): void {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; ) {
    const n = writeSync(fd, bytes, at, bytes.length - at);
    if (n <= 0) throw Object.assign(new Error(`${path}: the disk accepted no more bytes`), { code: 'ENOSPC' });
    at += n;
  }
}
