/** syslog(3) through the C library, so journald or rsyslog picks rexecd's lines up. */
import { cfunc, libc } from './koffi';

export const LOG_AUTHPRIV = 10 << 3;
export const LOG_DAEMON = 3 << 3;
export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_NOTICE = 5;
export const LOG_INFO = 6;
const LOG_PID = 0x01;
/** Connect to the log socket now, not at the first message: a listener out of descriptors can still log. */
const LOG_NDELAY = 0x08;

const openlog = cfunc<(ident: Buffer, option: number, facility: number) => void>(libc, 'void openlog(const uint8_t *ident, int option, int facility)');
const syslogC = cfunc<(priority: number, format: string, ...args: unknown[]) => void>(libc, 'void syslog(int priority, const char *format, ...)');

// glibc keeps the ident pointer: it must outlive every syslog() call.
let ident: Buffer | undefined;

export function openSyslog(name: string, facility: number): void {
  ident = Buffer.from(`${name}\0`);
  openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

export function syslog(priority: number, message: string): void {
  if (ident) syslogC(priority, '%s', 'const char *', message);
}
