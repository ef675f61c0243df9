// The tests' clients: the glibc rexec_af() client (compiled from rexec-client.c),
// and a raw-socket client for byte-exact checks.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './world.mjs';

const BUILD = join(ROOT, 'test', '.build');
const CLIENT = join(BUILD, 'rexec-client');
const SOURCE = join(ROOT, 'test', 'harness', 'rexec-client.c');

export function clientPath() {
  if (!existsSync(CLIENT) || statSync(CLIENT).mtimeMs < statSync(SOURCE).mtimeMs) {
    mkdirSync(BUILD, { recursive: true });
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', CLIENT, SOURCE]);
  }
  return CLIENT;
}

/**
 * Run the glibc client.  Returns { code, stdout, stderr } (Buffers).
 * input: Buffer piped to stdin (omitted: -n, no stdin).
 */
export function glibcClient({ port, host = '127.0.0.1', user, password, command, stderrChannel = true, input, family, timeout = 30000 }) {
  const args = [];
  if (family === 4) args.push('-4');
  if (family === 6) args.push('-6');
  if (!stderrChannel) args.push('-E');
  if (input === undefined) args.push('-n');
  args.push('-l', user, '-p', password, host, String(port), command);
  return new Promise((resolve, reject) => {
    const child = spawn(clientPath(), args, { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
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

/** The request bytes: port\0user\0password\0command\0. */
export function request({ port = '', user, password, command }) {
  return Buffer.concat([port, user, password, command].map((f) => Buffer.concat([Buffer.from(f), Buffer.from([0])])));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A raw session (from localAddress when given).  steps: Buffers to write, { delay: ms }, { end: true } (half-close),
 * { destroy: true } (close at once), { reset: true } (RST).  With stderr: true a
 * listener is opened on the same host, and `port` in `stderrPort(port)` steps is
 * filled with it: pass steps as a function (stderrPort) => steps.
 * Resolves { main, stderr, stderrConnected, mainClosed: 'eof'|'reset'|'timeout', ms,
 * localPort } (localPort: the client's own port, which rexecd -l logs).
 */
export async function raw({ port, host = '127.0.0.1', localAddress, steps, stderr = false, timeout = 15000, onData }) {
  let listener;
  let stderrPort = 0;
  const errChunks = [];
  let stderrConnected = false;
  let stderrClosed;
  if (stderr) {
    listener = createServer((s) => {
      stderrConnected = true;
      s.on('data', (d) => errChunks.push(d));
      s.on('error', () => {});
      stderrClosed = new Promise((r) => s.on('close', r));
    });
    await new Promise((r) => listener.listen(0, localAddress ?? host, r));
    stderrPort = listener.address().port;
  }
  const list = typeof steps === 'function' ? steps(stderrPort) : steps;
  const t0 = performance.now();
  // localAddress: another loopback address (127.0.0.2...), another source to the listener.
  const sock = connect({ port, host, localAddress });
  const chunks = [];
  let closedHow = 'eof';
  const closed = new Promise((resolve) => {
    sock.on('data', (d) => {
      chunks.push(d);
      onData?.(Buffer.concat(chunks), sock);
    });
    sock.on('error', (e) => {
      closedHow = e.code === 'ECONNRESET' ? 'reset' : e.code;
    });
    sock.on('close', resolve);
  });
  await new Promise((r, j) => {
    sock.once('connect', r);
    sock.once('error', j);
  });
  const localPort = sock.localPort;
  for (const step of list) {
    if (sock.destroyed) break;
    if (Buffer.isBuffer(step) || typeof step === 'string') sock.write(step);
    else if (step.delay) await sleep(step.delay);
    else if (step.end) sock.end();
    else if (step.destroy) sock.destroy();
    else if (step.reset) sock.resetAndDestroy();
  }
  let timeoutHandle;
  const timer = new Promise((r) => (timeoutHandle = setTimeout(r, timeout))).then(() => 'timeout');
  const how = await Promise.race([closed.then(() => 'closed'), timer]);
  // A pending timer would keep the test process alive for `timeout` after its last test.
  clearTimeout(timeoutHandle);
  if (how === 'timeout') {
    closedHow = 'timeout';
    sock.destroy();
  }
  const ms = performance.now() - t0;
  if (stderrClosed) {
    let h;
    await Promise.race([stderrClosed, new Promise((r) => (h = setTimeout(r, 2000)))]);
    clearTimeout(h);
  }
  listener?.close();
  return { main: Buffer.concat(chunks), stderr: Buffer.concat(errChunks), stderrConnected, mainClosed: closedHow, ms, localPort };
}
