/**
 * How a password is checked: one interface, two methods (PAM and shadow).  Both
 * say only "yes, here is the account" or "no, and this is the real reason"; the
 * session turns every "no" into the same answer on the wire.
 */
import type { PasswdEntry } from '../sys/passwd';

export interface Credentials {
  /** The user name as the client sent it. */
  readonly user: Buffer;
  /** Zeroed by the session as soon as authenticate() returns. */
  readonly password: Buffer;
  /** Numeric peer address (PAM_RHOST). */
  readonly rhost: string;
}

/** What a successful login still needs from the method on the way to exec. */
export interface LoginSession {
  /** Between setgid and setuid (PAM: pam_setcred(PAM_ESTABLISH_CRED)). */
  establishCredentials(): void;
  /** Extra environment for the command (PAM: pam_getenvlist), NAME=value. */
  environment(): string[];
  /** Release everything before exec (PAM: pam_end). */
  end(): void;
}

export type AuthResult =
  | { readonly ok: true; readonly account: PasswdEntry; readonly session: LoginSession }
  | { readonly ok: false; readonly reason: string; readonly account?: PasswdEntry };

export interface Authenticator {
  /**
   * Whatever needs no request (PAM: pam_start, which reads the configuration and
   * loads the modules): done ahead by a pool worker, else by authenticate().
   */
  prepare(): void;
  authenticate(credentials: Credentials): AuthResult;
}

/** The session of a method that has nothing to add after the password check. */
export const NO_SESSION: LoginSession = {
  establishCredentials() {},
  environment: () => [],
  end() {},
};
