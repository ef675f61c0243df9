/**
 * Which authentication method serves this connection: PAM where libpam loads (the
 * way login checks passwords on Linux), the shadow method otherwise or on request.
 */
import type { Log } from '../log';
import type { Options } from '../options';
import { loadPam } from '../sys/pam';
import type { Authenticator } from './authenticator';
import { pamAuthenticator } from './pam';
import { shadowAuthenticator } from './shadow';

export class AuthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthConfigError';
  }
}

export function selectAuthenticator(options: Options, log: Log): Authenticator {
  if (options.auth === 'shadow') return shadowAuthenticator(options);
  const pam = loadPam();
  if (pam.ok) return pamAuthenticator(options, log);
  if (options.auth === 'pam') throw new AuthConfigError(`--auth pam, but libpam cannot be loaded: ${pam.why}`);
  log.daemon('warning', `libpam cannot be loaded (${pam.why}); using the shadow method`);
  return shadowAuthenticator(options);
}
