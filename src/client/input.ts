/**
 * Local stdin, read for the main connection with back-pressure and without a fresh
 * Buffer per chunk (see inbound.ts): each chunk is written to the connection and the
 * next read waits for that write to finish.
 *
 *   pipe or socket   a net.Socket on fd 0 reading into one reused buffer
 *   regular file     fs.read into one reused buffer
 *   terminal, other  process.stdin (a person types slower than the GC collects)
 */
import { fstatSync, read } from 'node:fs';
import { Socket, type SocketConstructorOpts } from 'node:net';
import type { Readable } from 'node:stream';
import { CHUNK, Inbound } from './inbound';

export interface Input {
  /** Sends everything to sink; calls onEnd once, at end of input or on a read error. */
  start(sink: Socket, onEnd: () => void): void;
  /** Stops reading for good. */
  stop(): void;
}

function socketInput(fd: number): Input {
  let sock: Socket | undefined;
  return {
    start(sink, onEnd) {
      const inbound = new Inbound();
      // onread is honoured by the constructor (Node >= 12) but missing from @types/node 20.
      const options: SocketConstructorOpts & { onread: Inbound['onread'] } = {
        fd,
        readable: true,
        writable: false,
        allowHalfOpen: true,
        onread: inbound.onread,
      };
      sock = new Socket(options);
      const s = sock;
      inbound.attach(s);
      inbound.consume((chunk) => {
        sink.write(chunk, (e) => (e ? s.destroy() : inbound.resume()));
        return false;
      });
      s.once('end', onEnd);
      s.once('error', onEnd);
      inbound.resume();
    },
    stop() {
      sock?.destroy();
    },
  };
}

function fileInput(fd: number): Input {
  let stopped = false;
  return {
    start(sink, onEnd) {
      const buffer = Buffer.alloc(CHUNK);
      const next = () => {
        if (stopped) return;
        read(fd, buffer, 0, buffer.length, null, (e, n) => {
          if (stopped) return;
          if (e || n === 0) {
            stopped = true;
            onEnd();
            return;
          }
          sink.write(buffer.subarray(0, n), (err) => (err ? (stopped = true) : next()));
        });
      };
      next();
    },
    stop() {
      stopped = true;
    },
  };
}

function streamInput(stream: Readable): Input {
  let sinkOf: Socket | undefined;
  return {
    start(sink, onEnd) {
      sinkOf = sink;
      stream.once('end', onEnd);
      // A read error (EIO from a hung-up terminal) is the end of input.
      stream.once('error', onEnd);
      stream.pipe(sink, { end: false });
    },
    stop() {
      if (sinkOf) stream.unpipe(sinkOf);
      stream.destroy();
    },
  };
}

/** The input for fd 0; `stdin` is only touched when it is a terminal or unusual. */
export function openInput(stdin: () => Readable): Input {
  let kind: 'socket' | 'file' | 'stream' | 'none';
  try {
    const st = fstatSync(0);
    kind = st.isFIFO() || st.isSocket() ? 'socket' : st.isFile() ? 'file' : 'stream';
  } catch {
    kind = 'none'; // fd 0 is closed: no input
  }
  switch (kind) {
    case 'socket':
      return socketInput(0);
    case 'file':
      return fileInput(0);
    case 'stream':
      return streamInput(stdin());
    case 'none':
      return { start: (_sink, onEnd) => onEnd(), stop: () => {} };
  }
}
