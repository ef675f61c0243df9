/**
 * The main connection: the client's TCP socket as the launcher handed it to us.
 * Reads are exact (MSG_PEEK, then consume only what belongs to the request), so
 * whatever the client sends after the command's NUL stays in the socket for the
 * command; and every wait is bounded by the session's one deadline.
 */
import { diagnosticBytes, STATUS_OK, type DiagnosticText } from '../protocol/diagnostics';
import { fieldReader, type FieldLimits, type FieldName } from '../protocol/request';
import { localAddress, peerAddress, POLLIN, recvNow, sendAll, waitFor, type SockAddr } from '../sys/socket';

export class Timeout extends Error {
  constructor(readonly waitingFor: string) {
    super(`timed out waiting for ${waitingFor}`);
    this.name = 'Timeout';
  }
}

export class ClientClosed extends Error {
  constructor(readonly during: string) {
    super(`client closed the connection during ${during}`);
    this.name = 'ClientClosed';
  }
}

export type FieldResult =
  | { readonly kind: 'field'; readonly value: Buffer }
  | { readonly kind: 'refuse'; readonly diagnostic: DiagnosticText };

/** The most a single peek looks at: the longest field and its NUL. */
const PEEK_MAX = 1 << 17;

export class Connection {
  readonly peer: SockAddr;
  readonly local: SockAddr;
  private readonly scratch: Buffer;

  constructor(
    readonly fd: number,
    /** performance.now() value after which every wait gives up. */
    readonly deadline: number,
  ) {
    this.peer = peerAddress(fd);
    this.local = localAddress(fd);
    this.scratch = Buffer.alloc(4096);
  }

  /** Read one NUL-terminated field, consuming nothing beyond its NUL. */
  readField(name: FieldName, limits: FieldLimits): FieldResult {
    const reader = fieldReader(name, limits);
    let buf = this.scratch;
    for (;;) {
      const n = recvNow(this.fd, buf, buf.length, true);
      if (n === 0) throw new ClientClosed(name);
      if (n < 0) {
        if (!waitFor(this.fd, POLLIN, this.deadline)) throw new Timeout(name);
        continue;
      }
      const step = reader.offer(buf.subarray(0, n));
      // Consume exactly what the reader claimed: all of it while the field goes on,
      // up to and including the NUL when it ends, up to the bad byte on refusal.
      this.consume(step.consumed);
      buf.fill(0, 0, n); // the password passes through here
      if (step.kind === 'field') return { kind: 'field', value: step.value };
      if (step.kind === 'refuse') return { kind: 'refuse', diagnostic: step.diagnostic };
      // A long field: peek bigger chunks rather than many small ones.
      if (n === buf.length && buf.length < PEEK_MAX) buf = Buffer.alloc(Math.min(buf.length * 4, PEEK_MAX));
    }
  }

  private consume(count: number): void {
    let left = count;
    while (left > 0) {
      const n = recvNow(this.fd, this.scratch.length >= left ? this.scratch : Buffer.alloc(left), left, false);
      // The bytes were there when peeked: a short or empty read here means the
      // socket changed under us (a reset), which ends the session.
      if (n <= 0) throw new ClientClosed('request');
      left -= n;
    }
    this.scratch.fill(0);
  }

  /** "\001text\n": the only way a refusal reaches the client. */
  sendDiagnostic(text: DiagnosticText): void {
    // A diagnostic gets a moment even after the deadline: it is the last thing said.
    sendAll(this.fd, diagnosticBytes(text), Math.max(this.deadline, performance.now() + 1000));
  }

  /** The one "\0" (SPEC §2.8); `fd` is where the connection is by then. */
  sendStatusOk(fd: number): void {
    sendAll(fd, STATUS_OK, this.deadline);
  }
}
