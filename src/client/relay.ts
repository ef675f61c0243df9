/**
 * After the \0: local stdin to the main connection (shutdown(SHUT_WR) at its end;
 * written through a dup of its fd, writeSide() in connect.ts, so a refused write
 * never costs the command's output),
 * the main connection to stdout, the secondary connection to stderr.  Back-pressure
 * holds in every direction: a chunk is read only when the previous one is written,
 * so a slow reader at either end stops the writer instead of filling memory.  Both
 * connections and stdin read into reused buffers (inbound.ts, input.ts), so a long
 * transfer does not leave garbage behind either.
 *
 * The session is over when the server has closed the main connection and the
 * secondary one (as rsh, we wait for both: a background job may still hold stderr).
 * A reset from the server ends a stream like an EOF: a command that exits without
 * reading all of its input makes its kernel answer our next bytes with a reset, and
 * that is no error (glibc's and BSD's clients treat it the same way).
 */
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { writeSide } from './connect';
import type { FdSocket } from './fd-socket';
import type { StderrConnection } from './handshake';
import type { Inbound } from './inbound';
import type { Input } from './input';

export interface RelayEnds {
  readonly main: FdSocket;
  /** The main connection's reader, holding any output that came with the status byte. */
  readonly inbound: Inbound;
  readonly stderr: StderrConnection | undefined;
  /** undefined with -n: the main connection is half-closed at once. */
  readonly input: Input | undefined;
  readonly stdout: Writable;
  readonly stderrOut: Writable;
}

export type RelayEnd =
  | { readonly kind: 'done' }
  /** Writing our stdout or stderr failed; EPIPE (the reader is gone) is the usual one. */
  | { readonly kind: 'output-closed'; readonly error: NodeJS.ErrnoException }
  | { readonly kind: 'broken'; readonly error: Error };

class OutputClosed extends Error {
  constructor(readonly error: NodeJS.ErrnoException) {
    super(error.message);
  }
}
const outputClosed = (e: Error | null | undefined) => new OutputClosed(e ?? new Error('output closed'));

const ENDS_LIKE_EOF = new Set(['ECONNRESET', 'EPIPE', 'ENOTCONN']);

/** Calls back once every byte written to `to` before now has been handed on. */
function flushed(to: Writable, done: (e?: Error | null) => void): void {
  to.write(Buffer.alloc(0), done);
}

/** Resolves at the end (or reset) of `from` once `to` has taken everything. */
function ending(from: Socket, to: Writable, reject: (e: Error) => void, resolve: () => void): () => void {
  let over = false;
  const finish = () => {
    if (over) return;
    over = true;
    flushed(to, (e) => (e ? reject(outputClosed(e)) : resolve()));
  };
  from.on('error', (e: NodeJS.ErrnoException) => (e.code && ENDS_LIKE_EOF.has(e.code) ? finish() : reject(e)));
  from.once('end', finish);
  from.once('close', finish);
  return finish;
}

/** A connection to a local output through its reused buffer. */
function carry(from: Socket, inbound: Inbound, to: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    to.on('error', (e) => reject(outputClosed(e)));
    ending(from, to, reject, resolve);
    inbound.consume((chunk) => {
      to.write(chunk, (e) => (e ? reject(outputClosed(e)) : inbound.resume()));
      return false;
    });
    inbound.resume();
  });
}

export async function relay(ends: RelayEnds): Promise<RelayEnd> {
  const { main, inbound, stderr, input, stdout, stderrOut } = ends;
  const sink = input ? writeSide(main) : main;
  const endOfInput = () => {
    if (!sink.destroyed && !sink.writableEnded) sink.end(); // shutdown(SHUT_WR)
  };
  if (input) input.start(sink, endOfInput);
  else endOfInput();
  try {
    await Promise.all([carry(main, inbound, stdout), stderr ? carry(stderr.socket, stderr.inbound, stderrOut) : undefined]);
    return { kind: 'done' };
  } catch (e) {
    return e instanceof OutputClosed ? { kind: 'output-closed', error: e.error } : { kind: 'broken', error: e as Error };
  } finally {
    input?.stop();
    sink.destroy();
    main.destroy();
    stderr?.socket.destroy();
  }
}
