/**
 * @module Local files made durable, and what a failed filesystem call
 * really means.
 *
 * Rules: a filesystem error names the output, the path and the real cause:
 * a recursive mkdir on a read-only filesystem reports ENOENT, so the nearest
 * existing ancestor is probed for the errno that applies there.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Makes a directory's entries (renames, new files) durable. */
export function fsyncDir(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Not every filesystem allows fsync on a directory; the rename is still atomic.
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/** Runs a filesystem call; a failure says which output, which path, and why. */
export function fsCall<T>(what: string, target: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw explainFsError(e, what, target);
  }
}

export function explainFsError(e: unknown, what: string, target: string): Error {
  const err = e as NodeJS.ErrnoException;
  if (!err?.code) return err;
  let code = err.code;
  let at = err.path ?? target;
  if (code === 'ENOENT') {
    // mkdir -p on a read-only or unwritable parent says ENOENT: ask the nearest existing directory.
    let dir = path.resolve(target);
    while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    try {
      fs.rmdirSync(fs.mkdtempSync(path.join(dir, '.salespipe-probe-')));
    } catch (probe) {
      code = (probe as NodeJS.ErrnoException).code ?? code;
      at = dir;
    }
  }
  const why: Record<string, string> = {
    EROFS: 'the filesystem is mounted read-only',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    ENOTDIR: 'a part of the path is a file, not a directory',
    EISDIR: 'the path is a directory',
    ENOENT: 'no such file or directory',
  };
  return new Error(`${what}: cannot write ${at}: ${why[code] ?? err.message} (${code})`);
}
