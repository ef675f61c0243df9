/**
 * Account policy applied after the password check, whatever the method (protocol.md §3.5):
 * root only with --allow-root, nobody listed in the deny file, nobody but root
 * while /etc/nologin exists.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { PasswdEntry } from '../sys/passwd';

export interface PolicyOptions {
  readonly allowRoot: boolean;
  readonly denyFile: string | undefined;
  /** Path of the nologin file; /etc/nologin outside tests. */
  readonly nologinFile?: string;
}

/** Why the account may not log in, or undefined when it may. */
export function policyRefusal(account: PasswdEntry, options: PolicyOptions): string | undefined {
  if (account.uid === 0 && !options.allowRoot) return 'root refused (no --allow-root)';
  if (options.denyFile !== undefined) {
    const denied = deniedBy(options.denyFile, account.name);
    if (denied) return denied;
  }
  const nologin = options.nologinFile ?? '/etc/nologin';
  if (account.uid !== 0 && existsSync(nologin)) return `${nologin} exists`;
  return undefined;
}

/**
 * ftpusers format: one name per line, '#' starts a comment, blanks ignored.  A deny
 * file that cannot be read denies everyone: failing open would let in exactly the
 * users the administrator meant to keep out.
 */
export function deniedBy(file: string, name: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'}), denying everyone`;
  }
  return parseDenyList(text).has(name) ? `denied by ${file}` : undefined;
}

export function parseDenyList(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const name = line.replace(/#.*/, '').trim();
    if (name) names.add(name);
  }
  return names;
}
