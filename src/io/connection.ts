/**
 * The main connection: the client's TCP socket as the launcher handed it to us.
 * Reads are exact (MSG_PEEK, then consume only what the request reader takes), so
 * whatever the client sends after the command's NUL stays in the socket for the
 * command; every wait is bounded by the session's one deadline.
 */
import { diagnosticBytes, STATUS_OK, type DiagnosticText } from '../protocol/diagnostics';
import type { RequestEvent, RequestReader } from '../protocol/request';
import { ECONNRESET, EPIPE } from '../sys/errno';
import { SysError } from '../sys/koffi';
import { localAddress, peerAddress, POLLIN, recvNow, sendAll, shutdown, waitFor, type SockAddr } from '../sys/socket';

/** The most a single peek looks at: the longest field and its NUL. */
const PEEK_MAX = 1 << 17;
const scratch = Buffer.alloc(4096);

/** How reading stopped when it did not produce an event of the request. */
export type ReadStop =
  /** The client closed, or reset, the connection. */
  | { readonly kind: 'closed'; readonly how?: string }
  /** The deadline passed. */
  | { readonly kind: 'timeout' };

/** A reset or a broken pipe is the client leaving, not a failure of ours. */
export function isClientGone(e: unknown): e is SysError {
  return e instanceof SysError && (e.errno === ECONNRESET || e.errno === EPIPE);
}

/**
 * Feed `reader` what the socket holds now, consuming exactly what the reader
 * takes: all of it while a field goes on, up to and including the NUL when one
 * ends, up to the bad byte on refusal.  Returns the first event that is not 'more',
 * 'more' when the socket has nothing more for now (the caller waits for it to
 * become readable), or how the connection ended.  Never blocks.
 */
export function pumpRequest(fd: number, reader: RequestReader): RequestEvent | ReadStop {
  let buf = scratch;
  try {
    for (;;) {
      const n = recvNow(fd, buf, buf.length, true);
      if (n === 0) return { kind: 'closed' };
      if (n < 0) return { kind: 'more' };
      const { consumed, event } = reader.offer(buf.subarray(0, n));
      consume(fd, consumed);
      buf.fill(0, 0, n); // the password passes through here
      if (event.kind !== 'more') return event;
      // A long field: peek bigger chunks rather than many small ones.
      if (n === buf.length && buf.length < PEEK_MAX) buf = Buffer.alloc(Math.min(buf.length * 4, PEEK_MAX));
    }
  } catch (e) {
    if (isClientGone(e)) return { kind: 'closed', how: e.message };
    throw e;
  }
}

function consume(fd: number, count: number): void {
  const sink = count <= scratch.length ? scratch : Buffer.alloc(count);
  let left = count;
  while (left > 0) {
    const n = recvNow(fd, sink, left, false);
    // The bytes were there when peeked: a short or empty read here means the
    // socket changed under us (a reset), which ends the session.
    if (n <= 0) throw new SysError('recv', ECONNRESET);
    left -= n;
  }
  sink.fill(0, 0, count);
}

/** How long, and how much, a refused client may still send before we close. */
export const LINGER_MS = 200;
export const LINGER_BYTES = 1 << 16;
export const SHUT_WR = 1;

/**
 * End our side after the last word: a FIN right behind it, then whatever the
 * client still sends (the rest of a refused request, stdin meant for the command)
 * read and dropped for a moment.  Closing with unread bytes makes the kernel answer
 * with a reset, and a reset can reach the client before it has read the diagnostic:
 * it would see the connection reset and not why (as the historic servers' clients
 * often do: they close at once).
 */
export function closeGracefully(fd: number): void {
  try {
    shutdown(fd, SHUT_WR);
    const until = performance.now() + LINGER_MS;
    for (let left = LINGER_BYTES; left > 0; ) {
      const n = recvNow(fd, scratch, Math.min(scratch.length, left), false);
      if (n === 0) return; // the client closed too
      if (n > 0) left -= n;
      else if (!waitFor(fd, POLLIN, until)) return;
    }
  } catch {
    // Reset, or gone: nothing more to be careful about.
  }
}

export class Connection {
  readonly peer: SockAddr;
  readonly local: SockAddr;
  private statusByteSent = false;

  constructor(
    readonly fd: number,
    /** performance.now() value after which every wait gives up. */
    readonly deadline: number,
  ) {
    this.peer = peerAddress(fd);
    this.local = localAddress(fd);
  }

  /** The next event of the request, waiting for the client up to the deadline. */
  read(reader: RequestReader): Exclude<RequestEvent, { kind: 'more' }> | ReadStop {
    for (;;) {
      const r = pumpRequest(this.fd, reader);
      if (r.kind !== 'more') return r;
      if (!waitFor(this.fd, POLLIN, this.deadline)) return { kind: 'timeout' };
    }
  }

  /**
   * "\001text\n", the last thing said: the only way a refusal reaches the client.
   * Best effort, then a graceful close (closeGracefully).
   */
  sendDiagnostic(text: DiagnosticText): void {
    try {
      // A diagnostic gets a moment even after the deadline: it is the last thing said.
      sendAll(this.fd, diagnosticBytes(text), Math.max(this.deadline, performance.now() + 1000));
      closeGracefully(this.fd);
    } catch {
      // The client is gone or does not read; the log says why we ended.
    }
  }

  /** The one "\0" (protocol.md §2.8).  Throws a SysError if the client is gone. */
  sendStatusOk(): void {
    sendAll(this.fd, STATUS_OK, this.deadline);
    this.statusByteSent = true;
  }

  /** After the "\0" nothing but the command's own output may reach the client. */
  get statusSent(): boolean {
    return this.statusByteSent;
  }
}
