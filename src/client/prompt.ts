/**
 * Asks for the password on the controlling terminal (/dev/tty, not stdin: stdin may
 * be the command's input), with echo off, as getpass(3) does.  The terminal is put in
 * raw mode for the question and always put back: on Enter, on Ctrl-C / Ctrl-D, on
 * SIGTERM, SIGHUP or SIGINT from outside, and at exit.
 *
 * The answer is kept in one Buffer that the caller zeroes; edited-out bytes are
 * zeroed at once.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { ReadStream } from 'node:tty';
import { ClientError } from './errors';

const ENTER_CR = 0x0d;
const ENTER_LF = 0x0a;
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const CTRL_U = 0x15;
const BACKSPACE = 0x08;
const DELETE = 0x7f;

/** The most bytes a typed password may have. */
export const MAX_TYPED = 1024;

/** The question was cut short by a signal (or Ctrl-C): exit as the shell expects. */
export class PromptAborted extends ClientError {
  constructor(readonly signal: NodeJS.Signals) {
    super('interrupted while asking for the password', 128 + (constants.signals[signal] ?? 0));
    this.name = 'PromptAborted';
  }
}

/** Opens the controlling terminal, or says there is none. */
function openTerminal(): number {
  try {
    return openSync('/dev/tty', 'r+');
  } catch {
    throw new ClientError('no password given and no terminal to ask for one: use -p, $REXEC_PASSWORD or ~/.netrc');
  }
}

export function askPassword(prompt: string): Promise<Buffer> {
  const fd = openTerminal();
  let input: ReadStream;
  try {
    input = new ReadStream(fd);
  } catch {
    closeSync(fd);
    throw new ClientError('no password given and /dev/tty is not a terminal');
  }
  const answer = Buffer.alloc(MAX_TYPED);
  let length = 0;

  return new Promise<Buffer>((resolve, reject) => {
    let finished = false;
    const restore = () => {
      try {
        input.setRawMode(false);
      } catch {
        // The terminal is gone (hung up): nothing to put back.
      }
    };
    const finish = (error: Error | undefined) => {
      if (finished) return;
      finished = true;
      restore();
      for (const s of SIGNALS) process.removeListener(s, onSignal[s]);
      process.removeListener('exit', restore);
      input.removeListener('data', onData);
      try {
        writeSync(fd, '\n');
      } catch {
        // As above.
      }
      input.destroy(); // closes fd
      if (error) {
        answer.fill(0);
        reject(error);
      } else {
        const copy = Buffer.from(answer.subarray(0, length));
        answer.fill(0);
        resolve(copy);
      }
    };
    /** What one byte does: undefined to go on, null to accept, an Error to give up. */
    const key = (byte: number): Error | null | undefined => {
      if (byte === ENTER_CR || byte === ENTER_LF) return null;
      if (byte === CTRL_C) return new PromptAborted('SIGINT');
      if (byte === CTRL_D) return length === 0 ? new ClientError('no password typed') : null;
      if (byte === BACKSPACE || byte === DELETE) {
        // Drop the last character, all of its UTF-8 continuation bytes included.
        while (length > 0 && (answer[length - 1]! & 0xc0) === 0x80) answer[--length] = 0;
        if (length > 0) answer[--length] = 0;
      } else if (byte === CTRL_U) {
        answer.fill(0, 0, length);
        length = 0;
      } else if (byte >= 0x20 || byte === 0x09) {
        if (length === MAX_TYPED) return new ClientError(`password longer than ${MAX_TYPED} bytes`);
        answer[length++] = byte;
      }
      return undefined;
    };
    const onData = (chunk: Buffer) => {
      for (const byte of chunk) {
        const outcome = key(byte);
        if (outcome !== undefined) {
          finish(outcome ?? undefined);
          break;
        }
      }
      chunk.fill(0);
    };
    const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;
    const onSignal = Object.fromEntries(
      SIGNALS.map((s) => [s, () => finish(new PromptAborted(s))]),
    ) as Record<(typeof SIGNALS)[number], () => void>;
    for (const s of SIGNALS) process.once(s, onSignal[s]);
    process.once('exit', restore);

    input.on('data', onData);
    input.on('error', (e) => finish(new ClientError(`reading the terminal: ${e.message}`)));
    input.on('end', () => finish(new ClientError('no password typed')));
    try {
      input.setRawMode(true);
      writeSync(fd, prompt);
    } catch (e) {
      finish(new ClientError(`cannot ask for the password: ${(e as Error).message}`));
    }
  });
}
