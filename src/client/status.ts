/**
 * The server's answer: one status byte on the main connection.  \0 means the command
 * is starting and everything after it is the command's output; anything else starts
 * a one-line message (\001 is the flag, not part of the text) after which the server
 * closes.  Bytes after the \0 stay in the Inbound for the relay.
 */
import type { Socket } from 'node:net';
import type { Inbound } from './inbound';

/** The longest message we keep; a real one is a short line. */
export const MAX_MESSAGE = 4096;
const FLAG = 0x01;
const NEWLINE = 0x0a;

export type Status =
  | { readonly kind: 'ok' }
  | { readonly kind: 'refused'; readonly message: string }
  /** The connection ended (or broke: error) before any answer. */
  | { readonly kind: 'closed'; readonly error: Error | undefined };

/** Starts reading the answer; nothing of the command's output is consumed. */
export function readStatus(sock: Socket, inbound: Inbound): { status: Promise<Status>; cancel: () => void } {
  let finish: (s: Status) => void = () => {};
  const status = new Promise<Status>((resolve) => (finish = resolve));
  let first: number | undefined;
  const message: Buffer[] = [];
  let length = 0;
  let over = false;

  const cleanup = () => {
    over = true;
    inbound.consume(undefined);
    sock.removeListener('end', onEnd);
    sock.removeListener('close', onEnd);
    sock.removeListener('error', onError);
  };
  const done = (s: Status) => {
    if (over) return;
    cleanup();
    finish(s);
  };
  const refused = () => {
    let text = Buffer.concat(message).toString('utf8');
    if (first !== FLAG) text = String.fromCharCode(first!) + text;
    done({ kind: 'refused', message: text.replace(/\r?\n$/, '') });
  };
  const onChunk = (chunk: Buffer): boolean => {
    let rest = chunk;
    if (first === undefined) {
      first = chunk[0]!;
      rest = chunk.subarray(1);
      if (first === 0) {
        inbound.putBack(rest);
        done({ kind: 'ok' });
        return false;
      }
    }
    const nl = rest.indexOf(NEWLINE);
    const take = nl >= 0 ? rest.subarray(0, nl + 1) : rest;
    const room = MAX_MESSAGE - length;
    message.push(Buffer.from(take.subarray(0, room))); // a copy: the chunk is the shared buffer
    length += Math.min(take.length, room);
    if (nl >= 0 || length >= MAX_MESSAGE) {
      refused();
      return false;
    }
    return true;
  };
  const onEnd = () => (first === undefined ? done({ kind: 'closed', error: undefined }) : refused());
  const onError = (e: Error) => (first === undefined ? done({ kind: 'closed', error: e }) : refused());

  if (sock.destroyed || sock.readableEnded) {
    over = true;
    finish({ kind: 'closed', error: sock.errored ?? undefined });
    return { status, cancel: () => {} };
  }
  sock.once('end', onEnd);
  sock.once('close', onEnd);
  sock.once('error', onError);
  inbound.consume(onChunk);
  if (!over) inbound.resume();
  return { status, cancel: cleanup };
}
