/**
 * The rexec request, without any I/O: four NUL-terminated fields on the main
 * connection, in this order.
 *
 *   port\0 user\0 password\0 command\0 [stdin of the command ...]
 *
 * The reader is fed whatever bytes are available and says how many of them belong
 * to the current field.  It never claims a byte past the NUL that ends a field, so
 * the caller can consume exactly what it is told and leave everything after the
 * command's NUL in the socket: those bytes are the command's stdin (SPEC §2.6).
 *
 * A field that breaks its limit is refused as soon as the offending byte is seen,
 * without waiting for its NUL (SPEC §2.3-2.5).
 */
import { Diagnostic, type DiagnosticText } from './diagnostics';

export type FieldName = 'port' | 'user' | 'password' | 'command';
export const FIELD_ORDER: readonly FieldName[] = ['port', 'user', 'password', 'command'];

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

export interface Request {
  readonly stderrPort: StderrPort;
  readonly user: Buffer;
  readonly password: Buffer;
  readonly command: Buffer;
}

export type Parse =
  | { readonly kind: 'more' }
  | { readonly kind: 'request'; readonly request: Request; readonly consumed: number }
  | { readonly kind: 'refuse'; readonly diagnostic: DiagnosticText; readonly consumed: number };

/**
 * Parses a whole request from one buffer: what a listener that holds an incomplete
 * request uses, and what the property tests check the field reader with.  The
 * stderr port is only parsed here; connecting back is the session's job.
 */
export function parseRequest(bytes: Uint8Array, limits: FieldLimits = DEFAULT_LIMITS): Parse {
  const values: Buffer[] = [];
  let offset = 0;
  for (const name of FIELD_ORDER) {
    const step = fieldReader(name, limits).offer(bytes.subarray(offset));
    offset += step.consumed;
    if (step.kind === 'more') return { kind: 'more' };
    if (step.kind === 'refuse') return { kind: 'refuse', diagnostic: step.diagnostic, consumed: offset };
    if (name === 'port') {
      const port = parseStderrPort(step.value);
      if (port.kind === 'bad') return { kind: 'refuse', diagnostic: Diagnostic.badStderrPort, consumed: offset };
    }
    values.push(step.value);
  }
  const [port, user, password, command] = values as [Buffer, Buffer, Buffer, Buffer];
  return { kind: 'request', request: { stderrPort: parseStderrPort(port), user, password, command }, consumed: offset };
}
