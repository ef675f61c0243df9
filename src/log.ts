/**
 * Where rexecd says what happened (protocol.md §5): syslog, ident "rexecd", with the pid;
 * authentication events to LOG_AUTHPRIV, everything else to LOG_DAEMON.  Nothing
 * here ever receives a password.
 */
import { LOG_AUTHPRIV, LOG_DAEMON, LOG_ERR, LOG_INFO, LOG_NOTICE, LOG_WARNING, openSyslog, syslog } from './sys/syslog';

export interface Log {
  /** A refusal or a success of authentication: LOG_AUTHPRIV. */
  auth(level: 'notice' | 'info' | 'warning', message: string): void;
  /** Protocol errors, timeouts, system failures: LOG_DAEMON. */
  daemon(level: 'err' | 'warning' | 'notice' | 'info', message: string): void;
}

const LEVEL = { err: LOG_ERR, warning: LOG_WARNING, notice: LOG_NOTICE, info: LOG_INFO } as const;

export function openLog(): Log {
  openSyslog('rexecd', LOG_DAEMON);
  return {
    auth: (level, message) => syslog(LOG_AUTHPRIV | LEVEL[level], message),
    daemon: (level, message) => syslog(LOG_DAEMON | LEVEL[level], message),
  };
}
