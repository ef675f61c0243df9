/**
 * ~/.netrc, read as ftp(1) and glibc's ruserpass() read it:
 *
 *   machine NAME login USER password PASS [account X] [macdef NAME ... blank line]
 *   default login USER password PASS
 *
 * Tokens are separated by blanks and newlines; a token may be "quoted", with \ to
 * escape the next character.  The first `machine` entry that names the host (any
 * case) and whose login fits the user already chosen wins; `default` is used only
 * when no machine entry fits.  A file that holds the password we would use must not
 * be readable by group or others, and must be the user's own: otherwise it is
 * refused, as ftp refuses it.
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { ClientError } from './errors';

export interface NetrcEntry {
  /** undefined for `default`. */
  readonly machine: string | undefined;
  readonly login: string | undefined;
  readonly password: string | undefined;
}

/** The entries of a netrc text, in file order. */
export function parseNetrc(text: string): NetrcEntry[] {
  const entries: { machine: string | undefined; login?: string; password?: string }[] = [];
  let current: (typeof entries)[number] | undefined;
  let pos = 0;

  function token(): string | undefined {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
    if (pos >= text.length) return undefined;
    let out = '';
    if (text[pos] === '"') {
      pos++;
      while (pos < text.length && text[pos] !== '"') {
        if (text[pos] === '\\' && pos + 1 < text.length) pos++;
        out += text[pos++];
      }
      pos++; // the closing quote
      return out;
    }
    while (pos < text.length && !/\s/.test(text[pos]!)) {
      if (text[pos] === '\\' && pos + 1 < text.length) pos++;
      out += text[pos++];
    }
    return out;
  }

  for (let word = token(); word !== undefined; word = token()) {
    switch (word) {
      case 'machine':
        current = { machine: token() ?? '' };
        entries.push(current);
        break;
      case 'default':
        current = { machine: undefined };
        entries.push(current);
        break;
      case 'login':
      case 'password': {
        const value = token();
        if (current && value !== undefined) current[word] = value;
        break;
      }
      case 'account':
        token();
        break;
      case 'macdef': {
        // A macro runs to the first empty line; it is ftp's business, not ours.
        token();
        const end = text.indexOf('\n\n', pos);
        pos = end < 0 ? text.length : end + 2;
        current = undefined;
        break;
      }
      default:
      // Unknown words are skipped, as ftp does (after a warning we do not need).
    }
  }
  return entries.map((e) => Object.freeze({ machine: e.machine, login: e.login, password: e.password }));
}

/** The entry for host (and user, when one is already chosen), or undefined. */
export function findEntry(entries: readonly NetrcEntry[], host: string, user: string | undefined): NetrcEntry | undefined {
  const fits = (e: NetrcEntry) => user === undefined || e.login === undefined || e.login === user;
  const wanted = host.toLowerCase();
  return (
    entries.find((e) => e.machine !== undefined && e.machine.toLowerCase() === wanted && fits(e)) ??
    entries.find((e) => e.machine === undefined && fits(e))
  );
}

export interface NetrcLookup {
  readonly login: string | undefined;
  readonly password: string | undefined;
}

/**
 * Reads path and returns what it says for host and user.  A missing or unreadable
 * file says nothing.  Throws a ClientError when the entry has a password and the
 * file is open to group or others, or belongs to someone else.
 */
export function lookupNetrc(path: string, host: string, user: string | undefined, uid = process.geteuid?.() ?? 0): NetrcLookup {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { login: undefined, password: undefined };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { login: undefined, password: undefined };
    const entry = findEntry(parseNetrc(readFileSync(fd, 'utf8')), host, user);
    if (!entry) return { login: undefined, password: undefined };
    if (entry.password !== undefined) {
      if ((st.mode & 0o077) !== 0) {
        throw new ClientError(
          `${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}) and holds a password: ` +
            `refused. Remove the password or run: chmod 600 ${path}`,
        );
      }
      if (st.uid !== uid) {
        throw new ClientError(`${path} holds a password but belongs to uid ${st.uid}, not to you: refused`);
      }
    }
    return { login: entry.login, password: entry.password };
  } finally {
    closeSync(fd);
  }
}
