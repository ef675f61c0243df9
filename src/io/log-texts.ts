/**
 * The log lines about reading a request, shared by the two readers of one (the
 * per-connection session under inetd, the listener under --listen), so that an
 * administrator's log patterns match whichever launcher served the connection.
 */
import type { DiagnosticText } from '../protocol/diagnostics';

export const requestLog = {
  connection: (from: string, port: number) => `connection from ${from} port ${port}`,
  fieldRefused: (diagnostic: DiagnosticText, from: string) => `${diagnostic.replace(/\.$/, '')} from ${from}`,
  badPort: (from: string, why: string) => `bad stderr port from ${from}: ${why}`,
  cantConnect: (from: string, port: number, why: string) => `can't connect to stderr port ${from} port ${port}: ${why}`,
  timeout: (seconds: number, waitingFor: string, from: string) => `timeout (${seconds} s) waiting for ${waitingFor} from ${from}`,
  clientLeft: (what: string, from: string) => `${what} from ${from}`,
};
