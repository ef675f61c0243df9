/**
 * The message in which the listener hands a complete request to a pre-started
 * per-connection rexecd, beside the connection's fds (SCM_RIGHTS).  Pure: no I/O.
 *
 *   "RXH1" | flags u8 (1: a stderr channel fd follows the connection's) |
 *   remaining deadline ms u32 | user len u16 | password len u16 | command len u32 |
 *   user | password | command
 */
import { MAX_FIELD } from '../options';
import { MAX_ARG_STRLEN } from '../protocol/request';

const MAGIC = 'RXH1';
const HEADER = 4 + 1 + 4 + 2 + 2 + 4;

export interface Handoff {
  readonly hasStderr: boolean;
  readonly remainingMs: number;
  readonly user: Buffer;
  readonly password: Buffer;
  readonly command: Buffer;
}

/** The largest message: the longest user name, password and command the options allow. */
export const HANDOFF_MAX = HEADER + 2 * MAX_FIELD + MAX_ARG_STRLEN;

export function encodeHandoff(h: Handoff): Buffer {
  const out = Buffer.alloc(HEADER + h.user.length + h.password.length + h.command.length);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt8(h.hasStderr ? 1 : 0, 4);
  out.writeUInt32LE(Math.max(0, Math.min(0xffffffff, Math.round(h.remainingMs))), 5);
  out.writeUInt16LE(h.user.length, 9);
  out.writeUInt16LE(h.password.length, 11);
  out.writeUInt32LE(h.command.length, 13);
  h.user.copy(out, HEADER);
  h.password.copy(out, HEADER + h.user.length);
  h.command.copy(out, HEADER + h.user.length + h.password.length);
  return out;
}

/** The handoff in `data`, or undefined when the message is not one. */
export function decodeHandoff(data: Buffer): Handoff | undefined {
  if (data.length < HEADER || data.toString('latin1', 0, 4) !== MAGIC) return undefined;
  const userLen = data.readUInt16LE(9);
  const passwordLen = data.readUInt16LE(11);
  const commandLen = data.readUInt32LE(13);
  if (data.length !== HEADER + userLen + passwordLen + commandLen) return undefined;
  let at = HEADER;
  const take = (n: number): Buffer => Buffer.from(data.subarray(at, (at += n)));
  return {
    hasStderr: (data.readUInt8(4) & 1) === 1,
    remainingMs: data.readUInt32LE(5),
    user: take(userLen),
    password: take(passwordLen),
    command: take(commandLen),
  };
}
