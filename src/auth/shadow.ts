/**
 * The shadow method (protocol.md §3.4): passwd and shadow entries through NSS, the hash
 * checked with the system's crypt_r, compared in constant time, and the account's
 * ageing fields applied the way pam_unix applies them.
 */
import { readFileSync } from 'node:fs';
import { cryptHash, gensalt } from '../sys/crypt';
import { getPasswd, getShadow, type ShadowEntry } from '../sys/passwd';
import { NO_SESSION, type AuthResult, type Authenticator, type Credentials } from './authenticator';

export interface ShadowOptions {
  readonly allowEmptyPassword: boolean;
}

export function shadowAuthenticator(options: ShadowOptions): Authenticator {
  return {
    // libcrypt and NSS, loaded by a first lookup and a first hash.
    prepare: () => {
      getPasswd(Buffer.from('root'));
      defaultSetting();
    },
    authenticate: (credentials) => authenticate(credentials, options),
  };
}

function authenticate({ user, password }: Credentials, options: ShadowOptions): AuthResult {
  const account = getPasswd(user);
  if (!account) {
    // Spend what a real check costs, so timing does not tell which accounts exist.
    hashWithDefaultMethod(password);
    return { ok: false, reason: 'unknown user' };
  }
  const shadow = account.passwd === 'x' ? getShadow(account.name) : undefined;
  const hash = shadow ? shadow.hash : account.passwd;
  if (account.passwd === 'x' && !shadow) {
    hashWithDefaultMethod(password);
    return { ok: false, reason: 'no shadow entry', account };
  }
  if (hash === '') {
    if (!options.allowEmptyPassword) return { ok: false, reason: 'empty password refused', account };
  } else if (hash.startsWith('!') || hash.startsWith('*')) {
    hashWithDefaultMethod(password);
    return { ok: false, reason: 'account locked', account };
  } else if (!matches(password, hash)) {
    return { ok: false, reason: 'bad password', account };
  }
  const aged = shadow && ageingRefusal(shadow, Math.floor(Date.now() / 86_400_000));
  if (aged) return { ok: false, reason: aged, account };
  return { ok: true, account, session: NO_SESSION };
}

function matches(password: Buffer, hash: string): boolean {
  const computed = cryptHash(password, hash);
  return computed !== undefined && constantTimeEqual(computed, hash);
}

/**
 * Compare without stopping at the first difference, so the time taken says nothing
 * about how much of the hash matched.  (Not node:crypto's timingSafeEqual: loading
 * node:crypto costs ~3 ms, paid by every connection.)  A length mismatch is no secret.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Why the shadow ageing fields refuse a login today, if they do.  The same rules as
 * pam_unix's account check: an expired account, a password that must be changed
 * (nobody can change one over rexec), a password expired past its inactive period.
 */
export function ageingRefusal(s: ShadowEntry, today: number): string | undefined {
  if (s.expire !== -1 && today >= s.expire) return 'account expired';
  if (s.lastChange === 0) return 'password must be changed';
  if (s.max !== -1 && s.lastChange > 0) {
    const age = today - s.lastChange;
    if (s.inactive !== -1 && age > s.max + s.inactive) return 'account inactive (password expired)';
    if (age > s.max) return 'password expired';
  }
  return undefined;
}

/**
 * The prefix and cost the system hashes new passwords with (login.defs), with a
 * salt; made once per process (a pool worker makes it ahead): the hash it serves
 * for is thrown away.
 */
let setting: { value: string | undefined } | undefined;
function defaultSetting(): string | undefined {
  return (setting ??= { value: makeDefaultSetting() }).value;
}

function makeDefaultSetting(): string | undefined {
  let method = 'YESCRYPT';
  let cost = 0;
  try {
    const defs = readFileSync('/etc/login.defs', 'latin1');
    const value = (key: string) => new RegExp(`^\\s*${key}\\s+(\\S+)`, 'm').exec(defs)?.[1];
    method = value('ENCRYPT_METHOD')?.toUpperCase() ?? method;
    cost = Number(value(method === 'YESCRYPT' ? 'YESCRYPT_COST_FACTOR' : 'SHA_CRYPT_MIN_ROUNDS') ?? 0) || 0;
  } catch {
    // No login.defs: libxcrypt's own default below.
  }
  const prefix: Record<string, string> = { YESCRYPT: '$y$', SHA512: '$6$', SHA256: '$5$', MD5: '$1$', DES: '' };
  return gensalt(prefix[method] ?? null, cost) ?? gensalt(null, 0);
}

function hashWithDefaultMethod(password: Buffer): void {
  const setting = defaultSetting();
  if (setting !== undefined) cryptHash(password, setting);
}

