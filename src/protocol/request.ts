/**
 * The rexec request, without any I/O: four NUL-terminated fields on the main
 * connection, in this order.
 *
 *   port\0 user\0 password\0 command\0 [stdin of the command ...]
 *
 * FieldReader reads one field, RequestReader the whole request with the stderr
 * channel's connect-back between the port and the user name.  Both are fed
 * whatever bytes are available and say how many of them they take; they never take
 * a byte past the NUL that ends a field, so the caller can consume exactly that and
 * leave everything after the command's NUL in the socket: those bytes are the
 * command's stdin (SPEC §2.6).
 *
 * A field that breaks its limit is refused as soon as the offending byte is seen,
 * without waiting for its NUL (SPEC §2.3-2.5).
 */
import { Diagnostic, type DiagnosticText } from './diagnostics';

export type FieldName = 'port' | 'user' | 'password' | 'command';

/** Longest value of each field, in bytes, not counting its NUL. */
export interface FieldLimits {
  readonly user: number;
  readonly password: number;
  readonly command: number;
}

/** Linux MAX_ARG_STRLEN: one exec argument, including its NUL. */
export const MAX_ARG_STRLEN = 131072;
/** The classic limits: 16 bytes of user name, 16 of password (SPEC §2.3, §2.4). */
export const DEFAULT_LIMITS: FieldLimits = { user: 16, password: 16, command: MAX_ARG_STRLEN - 1 };
/** At most five digits: "65535". */
const PORT_DIGITS = 5;

export type Step =
  /** Every byte offered belongs to the field, which is not finished yet. */
  | { readonly kind: 'more'; readonly consumed: number }
  /** The field is complete; `consumed` includes its NUL. */
  | { readonly kind: 'field'; readonly consumed: number; readonly name: FieldName; readonly value: Buffer }
  /** The field is refused; `consumed` bytes were looked at (none past the bad one). */
  | { readonly kind: 'refuse'; readonly consumed: number; readonly name: FieldName; readonly diagnostic: DiagnosticText };

const TOO_LONG: Record<FieldName, DiagnosticText> = {
  port: Diagnostic.badStderrPort,
  user: Diagnostic.usernameTooLong,
  password: Diagnostic.passwordTooLong,
  command: Diagnostic.commandTooLong,
};

/**
 * Reads one field at a time.  Memory is bounded by the field's limit: bytes past it
 * are never stored.  The caller zeroes the password value when it is done with it;
 * the reader zeroes its own copy of each partial field as it hands the value out.
 */
export class FieldReader {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(
    readonly name: FieldName,
    private readonly max: number,
  ) {}

  /** Offer the next bytes the client sent.  Never throws. */
  offer(bytes: Uint8Array): Step {
    const nul = bytes.indexOf(0);
    const end = nul === -1 ? bytes.length : nul;
    const room = this.max - this.length;
    if (this.name === 'port') {
      // A port is digits only: the first other byte is where it is refused.
      for (let i = 0; i < Math.min(end, room); i++) {
        const c = bytes[i]!;
        if (c < 0x30 || c > 0x39) {
          return { kind: 'refuse', consumed: i + 1, name: 'port', diagnostic: Diagnostic.badStderrPort };
        }
      }
    }
    // The first byte past the limit is where the field is refused.
    if (end > room) {
      this.wipe();
      return { kind: 'refuse', consumed: room + 1, name: this.name, diagnostic: TOO_LONG[this.name] };
    }
    if (end > 0) {
      this.parts.push(Buffer.from(bytes.subarray(0, end)));
      this.length += end;
    }
    if (nul === -1) return { kind: 'more', consumed: bytes.length };
    const value = Buffer.concat(this.parts, this.length);
    this.wipe();
    return { kind: 'field', consumed: nul + 1, name: this.name, value };
  }

  private wipe(): void {
    for (const p of this.parts) p.fill(0);
    this.parts = [];
    this.length = 0;
  }
}

export function fieldReader(name: FieldName, limits: FieldLimits): FieldReader {
  const max = name === 'port' ? PORT_DIGITS : limits[name];
  return new FieldReader(name, max);
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

export type StderrPort =
  | { readonly kind: 'none' }
  | { readonly kind: 'port'; readonly port: number }
  | { readonly kind: 'bad'; readonly why: string };

/**
 * The port field's meaning (SPEC §2.1): empty or zero asks for no secondary channel;
 * otherwise a port from 1024 to 65535 on the client's host.  Ports below 1024 are
 * refused: no client listens there, and the connect-back must not be a way to reach
 * the privileged services of the client's host.
 */
export function parseStderrPort(field: Buffer): StderrPort {
  if (field.length > PORT_DIGITS) return { kind: 'bad', why: 'more than 5 digits' };
  let port = 0;
  for (const c of field) {
    if (c < 0x30 || c > 0x39) return { kind: 'bad', why: 'not a decimal number' };
    port = port * 10 + (c - 0x30);
  }
  if (port === 0) return { kind: 'none' };
  if (port > 65535) return { kind: 'bad', why: `port ${port} is out of range` };
  if (port < 1024) return { kind: 'bad', why: `port ${port} is reserved (below 1024)` };
  return { kind: 'port', port };
}

/** A complete request, as the four fields arrived. */
export interface Request {
  /** Where the client listens for the stderr channel; undefined: no channel. */
  readonly stderrPort: number | undefined;
  readonly user: Buffer;
  /** Zeroed by whoever checks it, as soon as it is checked. */
  readonly password: Buffer;
  readonly command: Buffer;
}

export type RequestEvent =
  /** Every byte offered was taken; offer more when the client sends more. */
  | { readonly kind: 'more' }
  /**
   * The port field named a stderr channel: dial it back now, before anything else
   * is read (classic clients send their credentials only once it is up), then call
   * connected().  Nothing past the port's NUL has been taken.
   */
  | { readonly kind: 'connect-back'; readonly port: number }
  /** The request is complete; nothing past the command's NUL was taken. */
  | { readonly kind: 'request'; readonly request: Request }
  /** Refused at the byte that broke a rule; `portProblem` says what was wrong with a port field (for the log). */
  | { readonly kind: 'refuse'; readonly diagnostic: DiagnosticText; readonly portProblem?: string };

/**
 * The whole request (SPEC §2.1-2.5), resumable: fed whatever bytes the connection
 * has, it says how many it takes and what happens next.  The inetd session drives it
 * with blocking waits (session.ts), the listener from its poll loop (listener.ts).
 * It never takes a byte past the NUL that ends a field, so the caller consumes
 * exactly what it is told and everything after the command's NUL stays in the
 * socket for the command.
 */
export class RequestReader {
  private field: FieldReader;
  private stderrPort: number | undefined;
  private readonly values: Buffer[] = [];
  private dialling = false;

  constructor(private readonly limits: FieldLimits) {
    this.field = fieldReader('port', limits);
  }

  /** What the reader waits for: a field, or the stderr channel to be dialled. */
  get waitingFor(): FieldName | 'the stderr connection' {
    return this.dialling ? 'the stderr connection' : this.field.name;
  }

  /** Offer the bytes the client has sent; `consumed` of them belong to the request. */
  offer(bytes: Uint8Array): { readonly consumed: number; readonly event: RequestEvent } {
    if (this.dialling) return { consumed: 0, event: { kind: 'connect-back', port: this.stderrPort! } };
    let consumed = 0;
    for (;;) {
      const step = this.field.offer(bytes.subarray(consumed));
      consumed += step.consumed;
      if (step.kind === 'more') return { consumed, event: { kind: 'more' } };
      if (step.kind === 'refuse') {
        this.wipe();
        // A port field is refused at its first non-digit, or at a sixth digit.
        const portProblem = step.name === 'port' ? (step.consumed > 0 && isDigit(bytes[consumed - 1]!) ? 'more than 5 digits' : 'not a decimal number') : undefined;
        return { consumed, event: { kind: 'refuse', diagnostic: step.diagnostic, portProblem } };
      }
      if (step.name === 'port') {
        const port = parseStderrPort(step.value);
        if (port.kind === 'bad') return { consumed, event: { kind: 'refuse', diagnostic: Diagnostic.badStderrPort, portProblem: port.why } };
        this.field = fieldReader('user', this.limits);
        if (port.kind === 'port') {
          this.stderrPort = port.port;
          this.dialling = true;
          return { consumed, event: { kind: 'connect-back', port: port.port } };
        }
        continue;
      }
      this.values.push(step.value);
      if (step.name === 'command') {
        const [user, password, command] = this.values as [Buffer, Buffer, Buffer];
        this.values.length = 0;
        return { consumed, event: { kind: 'request', request: { stderrPort: this.stderrPort, user, password, command } } };
      }
      this.field = fieldReader(step.name === 'user' ? 'password' : 'command', this.limits);
    }
  }

  /** The stderr channel asked for by 'connect-back' is up: read on. */
  connected(): void {
    this.dialling = false;
  }

  /** Zero what has been read so far (a password among it): the request is abandoned. */
  wipe(): void {
    for (const v of this.values) v.fill(0);
    this.values.length = 0;
  }
}
