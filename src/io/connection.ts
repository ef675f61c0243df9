/**
 * The main connection: the client's TCP socket as the launcher handed it to us.
 * Reads are exact (MSG_PEEK, then consume only what belongs to the request), so
 * whatever the client sends after the command's NUL stays in the socket for the
 * command; and every wait is bounded by the session's one deadline.
 */
import { diagnosticBytes, STATUS_OK, type DiagnosticText } from '../protocol/diagnostics';
import { fieldReader, type FieldLimits, type FieldName, type FieldReader } from '../protocol/request';
import { SysError } from '../sys/koffi';
import { localAddress, peerAddress, POLLIN, recvNow, sendAll, waitFor, type SockAddr } from '../sys/socket';

export class Timeout extends Error {
  constructor(readonly waitingFor: string) {
    super(`timed out waiting for ${waitingFor}`);
    this.name = 'Timeout';
  }
}

export class ClientClosed extends Error {
  constructor(
    readonly during: string,
    /** How, when it was a reset or a broken pipe rather than an orderly close. */
    readonly how?: string,
  ) {
    super(`client closed the connection during ${during}${how ? ` (${how})` : ''}`);
    this.name = 'ClientClosed';
  }
}

const EPIPE = 32;
const ECONNRESET = 104;

/** A reset or a broken pipe is the client leaving, not a failure of ours. */
function clientGone(e: unknown, during: string): unknown {
  return e instanceof SysError && (e.errno === ECONNRESET || e.errno === EPIPE) ? new ClientClosed(during, e.message) : e;
}

export type FieldResult =
  | { readonly kind: 'field'; readonly value: Buffer }
  | { readonly kind: 'refuse'; readonly diagnostic: DiagnosticText };

/** The most a single peek looks at: the longest field and its NUL. */
const PEEK_MAX = 1 << 17;
const scratch = Buffer.alloc(4096);

/**
 * Feed `reader` what the socket holds now, consuming exactly what the reader
 * claims: all of it while the field goes on, up to and including the NUL when it
 * ends, up to the bad byte on refusal.  Returns undefined when the socket has no
 * more for now (the caller waits for it to become readable).  Never blocks.
 */
export function pumpField(fd: number, reader: FieldReader): FieldResult | undefined {
  let buf = scratch;
  for (;;) {
    const n = recvNow(fd, buf, buf.length, true);
    if (n === 0) throw new ClientClosed(reader.name);
    if (n < 0) return undefined;
    const step = reader.offer(buf.subarray(0, n));
    consume(fd, step.consumed);
    buf.fill(0, 0, n); // the password passes through here
    if (step.kind === 'field') return { kind: 'field', value: step.value };
    if (step.kind === 'refuse') return { kind: 'refuse', diagnostic: step.diagnostic };
    // A long field: peek bigger chunks rather than many small ones.
    if (n === buf.length && buf.length < PEEK_MAX) buf = Buffer.alloc(Math.min(buf.length * 4, PEEK_MAX));
  }
}

function consume(fd: number, count: number): void {
  const sink = count <= scratch.length ? scratch : Buffer.alloc(count);
  let left = count;
  while (left > 0) {
    const n = recvNow(fd, sink, left, false);
    // The bytes were there when peeked: a short or empty read here means the
    // socket changed under us (a reset), which ends the session.
    if (n <= 0) throw new ClientClosed('request');
    left -= n;
  }
  sink.fill(0, 0, count);
}

export class Connection {
  readonly peer: SockAddr;
  readonly local: SockAddr;

  constructor(
    readonly fd: number,
    /** performance.now() value after which every wait gives up. */
    readonly deadline: number,
  ) {
    this.peer = peerAddress(fd);
    this.local = localAddress(fd);
  }

  /** Read one NUL-terminated field, consuming nothing beyond its NUL. */
  readField(name: FieldName, limits: FieldLimits): FieldResult {
    try {
      return this.readFieldOnce(name, limits);
    } catch (e) {
      throw clientGone(e, name);
    }
  }

  private readFieldOnce(name: FieldName, limits: FieldLimits): FieldResult {
    const reader = fieldReader(name, limits);
    for (;;) {
      const r = pumpField(this.fd, reader);
      if (r) return r;
      if (!waitFor(this.fd, POLLIN, this.deadline)) throw new Timeout(name);
    }
  }

  /** "\001text\n": the only way a refusal reaches the client. */
  sendDiagnostic(text: DiagnosticText): void {
    // A diagnostic gets a moment even after the deadline: it is the last thing said.
    sendAll(this.fd, diagnosticBytes(text), Math.max(this.deadline, performance.now() + 1000));
  }

  /** The one "\0" (SPEC §2.8); `fd` is where the connection is by then. */
  sendStatusOk(fd: number): void {
    try {
      sendAll(fd, STATUS_OK, this.deadline);
    } catch (e) {
      throw clientGone(e, 'status byte');
    }
  }
}
