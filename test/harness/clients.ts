// The tests' clients: the glibc rexec_af() client (compiled from rexec-client.c),
// and a raw-socket client for byte-exact checks.
import { spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { compiledC } from './paths';
import { listenEphemeral } from './sockets';
import { sleep, within } from './wait';

/** The bytes as the tests compare them: one character per byte. */
export const latin1 = (bytes: Buffer): string => bytes.toString('latin1');

export function clientPath(): string {
  return compiledC('rexec-client.c', 'rexec-client');
}

export interface GlibcClientOptions {
  readonly port: number;
  readonly host?: string;
  readonly user: string;
  readonly password: string;
  readonly command: string;
  /** false: -E, no stderr channel (an empty port field). */
  readonly stderrChannel?: boolean;
  /** Piped to stdin; omitted: -n, no stdin. */
  readonly input?: Buffer;
  /** Only IPv4 or only IPv6 (-4, -6). */
  readonly family?: 4 | 6;
  readonly timeout?: number;
}

export interface ClientResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** Run the glibc client. */
export function glibcClient({ port, host = '127.0.0.1', user, password, command, stderrChannel = true, input, family, timeout = 30000 }: GlibcClientOptions): Promise<ClientResult> {
  const args: string[] = [];
  if (family === 4) args.push('-4');
  if (family === 6) args.push('-6');
  if (!stderrChannel) args.push('-E');
  if (input === undefined) args.push('-n');
  args.push('-l', user, '-p', password, host, String(port), command);
  return new Promise((resolve, reject) => {
    const child = spawn(clientPath(), args, { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`client timed out: ${command}`));
    }, timeout);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    child.stdin.on('error', () => {});
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/** The fields of a request; the port field is empty unless given. */
export interface RequestFields {
  readonly port?: string;
  readonly user: string;
  readonly password: string;
  readonly command: string;
}

/** The request bytes: port\0user\0password\0command\0. */
export function request({ port = '', user, password, command }: RequestFields): Buffer {
  return Buffer.concat([port, user, password, command].map((f) => Buffer.concat([Buffer.from(f), Buffer.from([0])])));
}

/** What a raw session does, in order. */
export type Step =
  | Buffer
  | string
  /** Wait before the next step. */
  | { readonly delay: number }
  /** Half-close. */
  | { readonly end: true }
  /** Close at once. */
  | { readonly destroy: true }
  /** Close with a RST. */
  | { readonly reset: true };

export interface RawOptions {
  readonly port: number;
  readonly host?: string;
  /** Another loopback address (127.0.0.2...) to connect from: another source to the listener. */
  readonly localAddress?: string;
  /** With stderr: a function of the stderr listener's port. */
  readonly steps: readonly Step[] | ((stderrPort: number) => readonly Step[]);
  /** Open a listener on the same host for the stderr channel. */
  readonly stderr?: boolean;
  readonly timeout?: number;
  /** Called with everything received so far, at each arrival. */
  readonly onData?: (received: Buffer) => void;
}

export interface RawResult {
  /** Every byte received on the connection. */
  readonly main: Buffer;
  /** Every byte received on the stderr channel. */
  readonly stderr: Buffer;
  readonly stderrConnected: boolean;
  /** How the connection ended: 'eof', 'reset', 'timeout' or another error code. */
  readonly mainClosed: string;
  /** From the connect to the close. */
  readonly ms: number;
  /** The client's own port, which rexecd -l logs. */
  readonly localPort: number | undefined;
}

/**
 * A raw session.  With stderr: true a listener is opened on the client's address,
 * and its port is passed to steps (given as a function) to put in the request.
 */
export async function raw({ port, host = '127.0.0.1', localAddress, steps, stderr = false, timeout = 15000, onData }: RawOptions): Promise<RawResult> {
  let listener: Server | undefined;
  let stderrPort = 0;
  const errChunks: Buffer[] = [];
  let stderrConnected = false;
  let stderrClosed: Promise<void> | undefined;
  if (stderr) {
    listener = createServer((s) => {
      stderrConnected = true;
      s.on('data', (d: Buffer) => errChunks.push(d));
      s.on('error', () => {});
      stderrClosed = new Promise((resolve) => s.on('close', () => resolve()));
    });
    stderrPort = await listenEphemeral(listener, localAddress ?? host);
  }
  const list = typeof steps === 'function' ? steps(stderrPort) : steps;
  const t0 = performance.now();
  const sock = connect({ port, host, localAddress });
  const chunks: Buffer[] = [];
  let closedHow = 'eof';
  const closed = new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      onData?.(Buffer.concat(chunks));
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      closedHow = e.code === 'ECONNRESET' ? 'reset' : String(e.code);
    });
    sock.on('close', () => resolve());
  });
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const localPort = sock.localPort;
  for (const step of list) {
    if (sock.destroyed) break;
    if (Buffer.isBuffer(step) || typeof step === 'string') sock.write(step);
    else if ('delay' in step) await sleep(step.delay);
    else if ('end' in step) sock.end();
    else if ('destroy' in step) sock.destroy();
    else sock.resetAndDestroy();
  }
  if ((await within(closed, timeout)) === 'timeout') {
    closedHow = 'timeout';
    sock.destroy();
  }
  const ms = performance.now() - t0;
  if (stderrClosed) await within(stderrClosed, 2000);
  listener?.close();
  return { main: Buffer.concat(chunks), stderr: Buffer.concat(errChunks), stderrConnected, mainClosed: closedHow, ms, localPort };
}

/** A connection that has sent some bytes and waits; got() is what it has received since. */
export interface WaitingClient {
  readonly socket: Socket;
  /** Resolves once connected (a connect to a listener with a full backlog never is). */
  readonly connected: Promise<void>;
  got(): string;
}

/** Connects (from localAddress, when given), sends bytes at once (queued until connected), and waits. */
export function waitingClient(port: number, bytes: string, { host = '127.0.0.1', localAddress }: { host?: string; localAddress?: string } = {}): WaitingClient {
  const socket = connect({ port, host, localAddress });
  let got = '';
  socket.on('data', (d: Buffer) => (got += latin1(d)));
  socket.on('error', () => {});
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(bytes);
  return { socket, connected, got: () => got };
}
