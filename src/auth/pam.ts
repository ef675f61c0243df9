/**
 * The PAM method (protocol.md §3.3): the system's own policy for service "rexec", the same
 * way login checks a password.  pam_authenticate and pam_acct_mgmt decide; after
 * setgid, pam_setcred; the PAM environment joins the command's.
 */
import { printable, quotedName } from '../io/log-texts';
import type { Log } from '../log';
import { getPasswd } from '../sys/passwd';
import {
  PamHandle,
  PAM_DISALLOW_NULL_AUTHTOK,
  PAM_ERROR_MSG,
  PAM_ESTABLISH_CRED,
  PAM_NEW_AUTHTOK_REQD,
  PAM_PROMPT_ECHO_OFF,
  PAM_PROMPT_ECHO_ON,
  PAM_SILENT,
  PAM_SUCCESS,
  PAM_TEXT_INFO,
} from '../sys/pam';
import type { AuthResult, Authenticator, Credentials } from './authenticator';

export interface PamOptions {
  readonly pamService: string;
  readonly allowEmptyPassword: boolean;
}

/** Raised when PAM itself cannot run: the client is told "Try again.". */
export class PamUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PamUnavailable';
  }
}

export function pamAuthenticator(options: PamOptions, log: Log): Authenticator {
  // One transaction per process: a per-connection rexecd serves one login.
  let pam: PamHandle | undefined;
  let current: Credentials | undefined;
  const prepare = (): PamHandle => {
    if (pam) return pam;
    try {
      // Echo-off prompts get the password, echo-on prompts the user name; what the
      // modules say for information goes to the log, never to the client.
      const started = PamHandle.start(options.pamService, (messages) =>
        messages.map((m) => {
          if (m.style === PAM_PROMPT_ECHO_OFF) return current?.password ?? null;
          if (m.style === PAM_PROMPT_ECHO_ON) return current?.user ?? null;
          // A module's text may quote what the client sent: escaped like it.
          if (m.style === PAM_ERROR_MSG || m.style === PAM_TEXT_INFO) log.auth('info', `PAM says: ${printable(Buffer.from(m.text))}`);
          return null;
        }),
      );
      try {
        started.disableFailDelay();
      } catch (e) {
        // Never a handle whose modules would still add their own random delay.
        started.end();
        throw e;
      }
      pam = started;
    } catch (e) {
      throw new PamUnavailable((e as Error).message);
    }
    return pam;
  };
  return {
    prepare: () => void prepare(),
    authenticate: (credentials) => {
      const handle = prepare();
      current = credentials;
      try {
        return authenticate(handle, credentials, options);
      } finally {
        current = undefined;
      }
    },
  };
}

function authenticate(pam: PamHandle, { user, rhost }: Credentials, options: PamOptions): AuthResult {
  try {
    pam.setUser(user);
    pam.setRhost(rhost);
  } catch (e) {
    pam.end();
    throw new PamUnavailable((e as Error).message);
  }
  const flags = PAM_SILENT | (options.allowEmptyPassword ? 0 : PAM_DISALLOW_NULL_AUTHTOK);
  const refuse = (what: string, rc: number): AuthResult => {
    const reason = `PAM: ${what}: ${pam.strerror(rc)}`;
    pam.end();
    return { ok: false, reason };
  };
  let rc = pam.authenticate(flags);
  if (rc !== PAM_SUCCESS) return refuse('authentication', rc);
  rc = pam.acctMgmt(flags);
  if (rc === PAM_NEW_AUTHTOK_REQD) return refuse('password must be changed, which rexec cannot do', rc);
  if (rc !== PAM_SUCCESS) return refuse('account', rc);
  const name = pam.user();
  const account = name === undefined ? undefined : getPasswd(Buffer.from(name));
  if (!account) {
    pam.end();
    return { ok: false, reason: `PAM accepted ${name === undefined ? 'a user' : quotedName(Buffer.from(name))} with no passwd entry` };
  }
  return {
    ok: true,
    account,
    session: {
      establishCredentials() {
        const r = pam.setcred(PAM_ESTABLISH_CRED);
        if (r !== PAM_SUCCESS) throw new Error(`pam_setcred: ${pam.strerror(r)}`);
      },
      environment: () => pam.environment(),
      end: () => pam.end(),
    },
  };
}
