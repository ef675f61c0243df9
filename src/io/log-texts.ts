/**
 * The log lines about reading a request, shared by the two readers of one (the
 * per-connection session under inetd, the listener), so that an administrator's
 * log patterns (and the shipped fail2ban filter) match whichever served it.
 */
import type { DiagnosticText } from '../protocol/diagnostics';
import type { RequestEvent } from '../protocol/request';

export const requestLog = {
  connection: (from: string, port: number) => `connection from ${from} port ${port}`,
  /** A field refused: too long, or a port that is not one. */
  refused: (event: Extract<RequestEvent, { kind: 'refuse' }>, from: string) =>
    event.portProblem !== undefined ? `bad stderr port from ${from}: ${event.portProblem}` : `${fieldRefused(event.diagnostic)} from ${from}`,
  cantConnect: (from: string, port: number, why: string) => `can't connect to stderr port ${from} port ${port}: ${why}`,
  timeout: (seconds: number, waitingFor: string, from: string) => `timeout (${seconds} s) waiting for ${waitingFor} from ${from}`,
  clientLeft: (during: string, from: string, how?: string) => `client closed the connection during ${during}${how ? ` (${how})` : ''} from ${from}`,
};

function fieldRefused(diagnostic: DiagnosticText): string {
  return diagnostic.replace(/\.$/, '');
}
