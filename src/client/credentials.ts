/**
 * Who to log in as, and with what password, in this order (the first that has it wins):
 *
 *   user:     -l, $REXEC_USER, the ~/.netrc entry's login, your local login name
 *   password: -p, $REXEC_PASSWORD ($REXEC_PASS, netkit rexec's name), the ~/.netrc
 *             entry's password, a "Password:" prompt on the terminal
 *
 * ~/.netrc is read only when something is still missing.  The password comes back
 * as a Buffer that the caller zeroes once it is sent.
 */
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ClientError } from './errors';
import { lookupNetrc, type NetrcLookup } from './netrc';
import { askPassword } from './prompt';

export interface Credentials {
  readonly user: string;
  readonly password: Buffer;
}

export interface CredentialSources {
  readonly host: string;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly env: NodeJS.ProcessEnv;
  /** Overridable for tests. */
  readonly netrc?: (path: string, host: string, user: string | undefined) => NetrcLookup;
  readonly ask?: (prompt: string) => Promise<Buffer>;
  readonly localUser?: () => string;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

function loginName(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    const name = nonEmpty(env.USER) ?? nonEmpty(env.LOGNAME);
    if (name === undefined) throw new ClientError('cannot tell who you are: give the remote user with -l');
    return name;
  }
}

export async function resolveCredentials(src: CredentialSources): Promise<Credentials> {
  let user = src.user ?? nonEmpty(src.env.REXEC_USER);
  let password = src.password ?? src.env.REXEC_PASSWORD ?? src.env.REXEC_PASS;
  if (user === undefined || password === undefined) {
    const home = nonEmpty(src.env.HOME) ?? homedir();
    const found = (src.netrc ?? lookupNetrc)(join(home, '.netrc'), src.host, user);
    user ??= found.login;
    password ??= found.password;
  }
  user ??= (src.localUser ?? (() => loginName(src.env)))();
  if (user === '') throw new ClientError('the remote user name is empty');
  if (user.includes('\0')) throw new ClientError('the remote user name holds a NUL byte');
  if (password !== undefined) {
    if (password.includes('\0')) throw new ClientError('the password holds a NUL byte');
    return { user, password: Buffer.from(password, 'utf8') };
  }
  const typed = await (src.ask ?? askPassword)('Password: ');
  if (typed.includes(0)) {
    typed.fill(0);
    throw new ClientError('the password holds a NUL byte');
  }
  return { user, password: typed };
}
