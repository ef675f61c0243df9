/**
 * Becoming the user (SPEC §4): initgroups, setgid, the method's credentials, setuid,
 * each checked; then proof that there is no way back to root.  Any failure here
 * ends the session with "Try again." before the status byte.
 */
import type { LoginSession } from '../auth/authenticator';
import type { PasswdEntry } from '../sys/passwd';
import { canRegainRoot } from '../sys/process';

// @types/node 20 lacks it; Node has had it since 0.9 on POSIX.
const initgroups = (process as unknown as { initgroups(user: string, extraGroup: number): void }).initgroups;

export class PrivilegeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrivilegeError';
  }
}

function step(what: string, call: () => void): void {
  try {
    call();
  } catch (e) {
    throw new PrivilegeError(`${what}: ${(e as Error).message}`);
  }
}

export function becomeUser(account: PasswdEntry, session: LoginSession): void {
  const { name, uid, gid } = account;
  if (process.geteuid!() !== 0) {
    // Not root (a trial --listen run by a user): only that user can be served, as is.
    if (process.geteuid!() !== uid) throw new PrivilegeError(`not running as root, cannot become uid ${uid}`);
    session.establishCredentials();
    return;
  }
  step(`initgroups(${name}, ${gid})`, () => initgroups(name, gid));
  step(`setgid(${gid})`, () => process.setgid!(gid));
  step('establishing credentials', () => session.establishCredentials());
  step(`setuid(${uid})`, () => process.setuid!(uid));
  verifyDropped(uid, gid);
}

function verifyDropped(uid: number, gid: number): void {
  const ids = [process.getuid!(), process.geteuid!(), process.getgid!(), process.getegid!()];
  if (ids.join() !== [uid, uid, gid, gid].join()) {
    throw new PrivilegeError(`ids are ${ids.join('/')} after the change, not ${uid}/${uid}/${gid}/${gid}`);
  }
  if (uid !== 0 && canRegainRoot()) throw new PrivilegeError('root could be regained after setuid');
}
