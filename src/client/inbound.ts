/**
 * Reading a socket into one reused buffer (net's `onread`), so that relaying a
 * gigabyte allocates nothing per chunk: with ordinary 'data' events every 64 KiB
 * read is a fresh Buffer, and tens of MiB of them wait for the garbage collector.
 *
 * A chunk handed to a consumer is a view of the shared buffer: it is valid until the
 * socket reads again.  A consumer that needs the chunk longer (an asynchronous write)
 * returns false -- the socket stops reading -- and calls resume() when it is done.
 */
import type { Socket } from 'node:net';

/** The size of one read. */
export const CHUNK = 64 * 1024;

/** Returns true to go on reading, false to stop until resume(). */
export type Consumer = (chunk: Buffer) => boolean;

export class Inbound {
  private readonly buffer: Buffer;
  private consumer: Consumer | undefined;
  /** A chunk that came while nobody consumed: reading stays stopped until it is taken. */
  private held: Buffer | undefined;
  private socket: Socket | undefined;
  /** For net.connect / new net.Socket. */
  readonly onread: { buffer: Buffer; callback: (n: number, buf: Uint8Array) => boolean };

  constructor(size = CHUNK) {
    this.buffer = Buffer.alloc(size);
    this.onread = { buffer: this.buffer, callback: (n) => this.arrive(this.buffer.subarray(0, n)) };
  }

  /** The socket that reads into this buffer. */
  attach(socket: Socket): this {
    this.socket = socket;
    return this;
  }

  private arrive(chunk: Buffer): boolean {
    if (this.consumer === undefined) {
      this.held = chunk;
      return false;
    }
    return this.consumer(chunk);
  }

  /** From now on chunks go to consumer (first the one held, if any); undefined holds them. */
  consume(consumer: Consumer | undefined): void {
    this.consumer = consumer;
    if (consumer === undefined || this.held === undefined) return;
    const chunk = this.held;
    this.held = undefined;
    if (consumer(chunk)) this.resume();
  }

  /**
   * Keeps the unconsumed tail of the current chunk for the next consumer.  Call from
   * a consumer that then returns false.
   */
  putBack(rest: Buffer): void {
    if (rest.length > 0) this.held = rest;
  }

  /** Reads on (never while a chunk is held: that chunk lives in the shared buffer). */
  resume(): void {
    if (this.held !== undefined) {
      if (this.consumer !== undefined) this.consume(this.consumer);
      return;
    }
    // Also makes the stream flowing, without which it never emits 'end'.
    if (this.socket && !this.socket.destroyed) this.socket.resume();
  }
}
