/**
 * The server's answer: one status byte on the main connection.  \0 means the command
 * is starting and everything after it is the command's output; anything else starts
 * a one-line message (\001 is the flag, not part of the text) after which the server
 * closes.  Bytes after the \0 are left in the socket for the relay.
 */
import type { Socket } from 'node:net';

/** The longest message we keep; a real one is a short line. */
export const MAX_MESSAGE = 4096;
const FLAG = 0x01;
const NEWLINE = 0x0a;

export type Status =
  | { readonly kind: 'ok' }
  | { readonly kind: 'refused'; readonly message: string }
  /** The connection ended (or broke: error) before any answer. */
  | { readonly kind: 'closed'; readonly error: Error | undefined };

export function readStatus(sock: Socket): { status: Promise<Status>; cancel: () => void } {
  let finish: (s: Status) => void = () => {};
  const status = new Promise<Status>((resolve) => (finish = resolve));
  let first: number | undefined;
  const message: Buffer[] = [];
  let length = 0;

  const cleanup = () => {
    sock.removeListener('readable', onReadable);
    sock.removeListener('end', onEnd);
    sock.removeListener('error', onError);
  };
  const done = (s: Status) => {
    cleanup();
    finish(s);
  };
  const refused = () => {
    let text = Buffer.concat(message).toString('utf8');
    if (first !== FLAG) text = String.fromCharCode(first!) + text;
    done({ kind: 'refused', message: text.replace(/\r?\n$/, '') });
  };
  const onReadable = () => {
    for (let chunk: Buffer | null = sock.read(); chunk !== null; chunk = sock.read()) {
      let rest = chunk;
      if (first === undefined) {
        first = chunk[0]!;
        rest = chunk.subarray(1);
        if (first === 0) {
          cleanup();
          if (rest.length > 0) sock.unshift(rest);
          finish({ kind: 'ok' });
          return;
        }
      }
      const nl = rest.indexOf(NEWLINE);
      const take = nl >= 0 ? rest.subarray(0, nl + 1) : rest;
      const room = MAX_MESSAGE - length;
      message.push(take.subarray(0, room));
      length += Math.min(take.length, room);
      if (nl >= 0 || length >= MAX_MESSAGE) return refused();
    }
  };
  const onEnd = () => (first === undefined ? done({ kind: 'closed', error: undefined }) : refused());
  const onError = (e: Error) => (first === undefined ? done({ kind: 'closed', error: e }) : refused());
  sock.on('readable', onReadable);
  sock.once('end', onEnd);
  sock.once('error', onError);
  return { status, cancel: cleanup };
}
