/**
 * The command's environment, built from scratch (protocol.md §4.4): nothing of rexecd's own
 * (NODE_*, LISTEN_*) reaches it.
 */
import type { PasswdEntry } from '../sys/passwd';

export const USER_PATH = '/usr/local/bin:/usr/bin:/bin';
export const ROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function loginShell(account: PasswdEntry): string {
  return account.shell || '/bin/sh';
}

/**
 * HOME, SHELL, USER, LOGNAME, PATH and RHOST; then the login method's own variables
 * (PAM's pam_env), which may set PATH or add to it, but never change who the user is.
 */
export function commandEnvironment(account: PasswdEntry, rhost: string, extra: readonly string[]): string[] {
  const env = new Map<string, string>([
    ['HOME', account.dir],
    ['SHELL', loginShell(account)],
    ['USER', account.name],
    ['LOGNAME', account.name],
    ['PATH', account.uid === 0 ? ROOT_PATH : USER_PATH],
    ['RHOST', rhost],
  ]);
  const identity = new Set(['HOME', 'SHELL', 'USER', 'LOGNAME']);
  for (const entry of extra) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    if (!identity.has(name)) env.set(name, entry.slice(eq + 1));
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}
