/**
 * The log lines about reading a request, shared by the two readers of one (the
 * per-connection session under inetd, the listener), so that an administrator's
 * log patterns (and the shipped fail2ban filter) match whichever served it; and how
 * any text a client chose (a user name, a command, what a PAM module quotes of it)
 * is escaped before it reaches a log line (protocol.md §5.2).
 */
import type { RequestEvent } from '../protocol/request';

export const requestLog = {
  connection: (from: string, port: number) => `connection from ${from} port ${port}`,
  /** A field refused: too long, or a port that is not one. */
  refused: (event: Extract<RequestEvent, { kind: 'refuse' }>, from: string) =>
    event.portProblem !== undefined ? `bad stderr port from ${from}: ${event.portProblem}` : `${event.diagnostic} from ${from}`,
  cantConnect: (from: string, port: number, why: string) => `can't connect to stderr port ${from} port ${port}: ${why}`,
  timeout: (seconds: number, waitingFor: string, from: string) => `timeout (${seconds} s) waiting for ${waitingFor} from ${from}`,
  clientLeft: (during: string, from: string, how?: string) => `client closed the connection during ${during}${how ? ` (${how})` : ''} from ${from}`,
};

/** Text a client sent (a command), for the log: control bytes (or what `escape` matches) as \xNN, length capped. */
export function printable(bytes: Buffer, max = 200, escape: RegExp = /[\x00-\x1f\x7f]/g): string {
  const text = bytes.subarray(0, max).toString('utf8').replace(escape, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return bytes.length > max ? `${text}...` : text;
}

/**
 * A user name as the client sent it, for the log: in double quotes, with '"', '\'
 * and control bytes as \xNN, so that no name can pass for the text around it (a
 * name "a from 10.9.8.7" must not read as an address).  The fail2ban filter
 * (etc/fail2ban/filter.d/rexecd.conf) relies on this.
 */
export function quotedName(bytes: Buffer): string {
  return `"${printable(bytes, 200, /[\x00-\x1f\x7f"\\]/g)}"`;
}
