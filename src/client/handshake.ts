/**
 * The rexec request, in the order classic clients send it (glibc rexec_af(), BSD
 * rexec(1)):
 *
 *   1. the stderr port field: "PORT\0", or "\0" for no secondary channel;
 *   2. with a port: wait until the server has connected back and we have accepted
 *      it (servers dial back before they read the user);
 *   3. "user\0password\0command\0";
 *   4. the status byte (status.ts).
 *
 * If the server answers on the main connection while we wait for its connect-back
 * (a refused port, a failed dial), that answer is read as the status.  The password
 * is zeroed as soon as it is copied into the request, and the request once it is
 * written.
 */
import type { Socket } from 'node:net';
import type { Credentials } from './credentials';
import type { Deadline } from './deadline';
import { ClientError, reason } from './errors';
import type { Inbound } from './inbound';
import { readStatus, type Status } from './status';
import { StderrListener } from './stderr-listener';

export interface Handshake {
  readonly status: Status;
  /** The server answered before it connected back: it never saw the credentials. */
  readonly early: boolean;
  /** The server's connection for the command's stderr (absent with -e or on refusal). */
  readonly stderr: StderrConnection | undefined;
}

export interface StderrConnection {
  readonly socket: Socket;
  /** What it reads into; holds nothing yet. */
  readonly inbound: Inbound;
}

const NUL = Buffer.from([0]);

/** "user\0password\0command\0"; the caller zeroes it after use. */
export function credentialBytes(creds: Credentials, command: string): Buffer {
  return Buffer.concat([Buffer.from(creds.user, 'utf8'), NUL, creds.password, NUL, Buffer.from(command, 'utf8'), NUL]);
}

/** Writes secret bytes and zeroes them once the socket is done with them. */
export function writeSecret(sock: Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.write(bytes, (e) => {
      bytes.fill(0);
      if (e) reject(e);
      else resolve();
    });
  });
}

/**
 * The stderr listener on the main connection's local address, for the server's;
 * undefined when the connection is gone already (then its end is the answer).
 */
function listenForStderr(main: Socket, host: string): StderrListener | undefined {
  const local = main.localAddress;
  const server = main.remoteAddress;
  if (local === undefined || server === undefined) return undefined;
  try {
    return StderrListener.open(local, server);
  } catch (e) {
    throw new ClientError(`${host}: cannot listen for the stderr connection on ${local}: ${reason(e)}`);
  }
}

export async function handshake(
  main: Socket,
  inbound: Inbound,
  creds: Credentials,
  command: string,
  opts: { readonly host: string; readonly noStderr: boolean; readonly deadline: Deadline },
): Promise<Handshake> {
  const request = credentialBytes(creds, command);
  creds.password.fill(0);
  // Read from the start: a server that refuses the port answers before any connect-back.
  const reading = readStatus(main, inbound);
  const answer = () => opts.deadline.race(reading.status, "the server's answer", reading.cancel);
  let stderr: StderrConnection | undefined;
  let listener: StderrListener | undefined;
  try {
    if (opts.noStderr) {
      await writeSecret(main, Buffer.concat([NUL, request]));
    } else {
      listener = listenForStderr(main, opts.host);
      if (listener === undefined) return { status: await reading.status, early: true, stderr: undefined };
      main.write(`${listener.port}\0`);
      const accepted = listener.connection().catch((e: unknown) => {
        throw new ClientError(`${opts.host}: accepting the stderr connection: ${reason(e)}`);
      });
      const first = await opts.deadline.race(
        Promise.race([accepted, reading.status.then(() => undefined)]),
        'the server to connect back to the stderr port',
        reading.cancel,
      );
      listener.close();
      if (first === undefined) return { status: await reading.status, early: true, stderr: undefined };
      stderr = { socket: first, inbound: listener.inbound };
      await writeSecret(main, request);
    }
    const status = await answer();
    if (status.kind !== 'ok') {
      stderr?.socket.destroy();
      stderr = undefined;
    }
    return { status, early: false, stderr };
  } catch (e) {
    listener?.close();
    stderr?.socket.destroy();
    throw e;
  } finally {
    request.fill(0);
  }
}
