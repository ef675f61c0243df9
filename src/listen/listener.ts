/**
 * Standalone mode (--listen).  One process accepts connections and reads each
 * request itself, without blocking on any of them: a connection that is slow to
 * send its request costs a few hundred bytes here, not a Node process.  A complete
 * request goes, with its connection and stderr channel, to a pre-started
 * per-connection rexecd (see pool.ts), which authenticates and execs exactly as
 * one started by inetd does.  The listener consumes nothing past the command's NUL.
 *
 * All socket work is non-blocking system calls; the one wait, poll(2), runs on a
 * koffi worker thread so that the event loop stays free for child processes and
 * signals.
 */
import { ClientClosed, pumpField } from '../io/connection';
import { requestLog } from '../io/log-texts';
import { openLog, type Log } from '../log';
import { commandLimit, type Options } from '../options';
import { diagnosticBytes, Diagnostic, type DiagnosticText } from '../protocol/diagnostics';
import { FIELD_ORDER, fieldReader, parseStderrPort, type FieldLimits, type FieldReader } from '../protocol/request';
import { argMax, exitNow } from '../sys/process';
import {
  acceptNow,
  close,
  finishConnect,
  listenTcp,
  localAddress,
  peerAddress,
  pollAsync,
  POLLIN,
  POLLOUT,
  recvNow,
  seqpacketPair,
  sendWithFds,
  startConnect,
  withPort,
  type PollRequest,
  type SockAddr,
} from '../sys/socket';
import { encodeHandoff } from './handoff';
import { Pool, type PoolWorker } from './pool';

/** Pre-started per-connection processes kept waiting. */
const POOL_SIZE = 2;

interface Pending {
  readonly fd: number;
  readonly peer: SockAddr;
  readonly local: SockAddr;
  readonly deadline: number;
  field: number;
  reader: FieldReader;
  readonly values: Buffer[];
  stderr?: number;
  stderrPort?: number;
  connecting: boolean;
}

export function listen(options: Options, argv: readonly string[] = process.argv.slice(2)): void {
  const log = openLog();
  const limits: FieldLimits = { user: options.maxName, password: options.maxPassword, command: commandLimit(argMax()) };
  const listeners = options.listen.map(({ host, port }) => {
    try {
      return { fd: listenTcp(host === 'localhost' ? '127.0.0.1' : host, port), name: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}` };
    } catch (e) {
      process.stderr.write(`rexecd: cannot listen on ${host}:${port}: ${(e as Error).message}\n`);
      process.exit(1);
    }
  });

  const pending = new Set<Pending>();
  const complete: Pending[] = [];
  let sessions = 0;
  const active = (): number => pending.size + complete.length + sessions;

  // A poll in flight watches a fixed set of fds; this pair lets the event loop wake
  // it when the set changes (a worker started, a session ended).
  const [wakeRead, wakeWrite] = seqpacketPair();
  let polling = false;
  const wake = (): void => {
    if (polling) sendWithFds(wakeWrite, Buffer.from('w'), []);
  };
  const pool = new Pool(withoutListenOptions(argv), Math.min(POOL_SIZE, options.maxConnections), wake, () => {
    sessions--;
  });

  const end = (c: Pending, text: DiagnosticText | undefined, level: 'notice' | 'info', why: string): void => {
    log.daemon(level, why);
    if (text !== undefined) sendNow(c.fd, diagnosticBytes(text));
    drop(c);
  };
  const drop = (c: Pending): void => {
    pending.delete(c);
    close(c.fd);
    if (c.stderr !== undefined) close(c.stderr);
    for (const v of c.values) v.fill(0);
  };

  const accept = (fd: number): void => {
    for (;;) {
      const conn = acceptNow(fd);
      if (conn < 0) return;
      let peer: SockAddr;
      let local: SockAddr;
      try {
        peer = peerAddress(conn);
        local = localAddress(conn);
      } catch {
        close(conn); // reset before we looked: nothing to serve
        continue;
      }
      if (active() >= options.maxConnections) {
        log.daemon('notice', `refused ${peer.address}: ${options.maxConnections} connections already (--max-connections)`);
        sendNow(conn, diagnosticBytes(Diagnostic.tryAgain));
        close(conn);
        continue;
      }
      if (options.logConnections) log.daemon('info', requestLog.connection(peer.address, peer.port));
      const c: Pending = { fd: conn, peer, local, deadline: performance.now() + options.timeout * 1000, field: 0, reader: fieldReader('port', limits), values: [], connecting: false };
      pending.add(c);
      read(c); // the request often arrives with the connection
    }
  };

  /** Read what the connection holds; move on field by field (SPEC §2.1-2.5). */
  const read = (c: Pending): void => {
    const from = c.peer.address;
    try {
      for (;;) {
        const r = pumpField(c.fd, c.reader);
        if (!r) return;
        if (r.kind === 'refuse') return end(c, r.diagnostic, 'notice', requestLog.fieldRefused(r.diagnostic, from));
        if (c.reader.name === 'port') {
          const port = parseStderrPort(r.value);
          if (port.kind === 'bad') return end(c, Diagnostic.badStderrPort, 'notice', requestLog.badPort(from, port.why));
          if (port.kind === 'port') {
            try {
              c.stderr = startConnect(c.local, withPort(c.peer, port.port));
            } catch (e) {
              return end(c, Diagnostic.cantConnectStderr, 'notice', requestLog.cantConnect(from, port.port, (e as Error).message));
            }
            c.stderrPort = port.port;
            c.connecting = true;
          }
        } else {
          c.values.push(r.value);
        }
        c.field++;
        if (c.field === FIELD_ORDER.length) {
          pending.delete(c);
          complete.push(c);
          return dispatch();
        }
        c.reader = fieldReader(FIELD_ORDER[c.field]!, limits);
        // The classic clients send their credentials only once we have connected back.
        if (c.connecting) return;
      }
    } catch (e) {
      if (e instanceof ClientClosed) return end(c, undefined, 'info', requestLog.clientLeft(e.message, from));
      return end(c, Diagnostic.tryAgain, 'notice', `failed reading from ${from}: ${(e as Error).message}`);
    }
  };

  const connected = (c: Pending): void => {
    try {
      finishConnect(c.stderr!);
    } catch (e) {
      return end(c, Diagnostic.cantConnectStderr, 'notice', requestLog.cantConnect(c.peer.address, c.stderrPort ?? 0, (e as Error).message));
    }
    c.connecting = false;
    read(c);
  };

  /** Hand complete requests to ready workers, oldest first. */
  const dispatch = (): void => {
    while (complete.length > 0) {
      const worker = pool.take();
      if (!worker) return;
      const c = complete.shift()!;
      handOver(c, worker);
    }
  };

  const handOver = (c: Pending, worker: PoolWorker): void => {
    const [user, password, command] = c.values as [Buffer, Buffer, Buffer];
    const message = encodeHandoff({ hasStderr: c.stderr !== undefined, remainingMs: c.deadline - performance.now(), user, password, command });
    try {
      sendWithFds(worker.fd, message, c.stderr === undefined ? [c.fd] : [c.fd, c.stderr]);
      sessions++;
    } catch (e) {
      log.daemon('err', `cannot hand ${c.peer.address} to a per-connection rexecd: ${(e as Error).message}`);
      sendNow(c.fd, diagnosticBytes(Diagnostic.tryAgain));
      worker.child.kill('SIGTERM');
    } finally {
      message.fill(0);
      close(worker.fd);
      drop(c);
    }
  };

  /** One round: poll everything, act on what is ready, expire what is late, again. */
  const round = (): void => {
    const watch: { req: PollRequest; on: () => void }[] = [];
    watch.push({ req: { fd: wakeRead, events: POLLIN }, on: () => recvNow(wakeRead, Buffer.alloc(16), 16, false) });
    for (const l of listeners) watch.push({ req: { fd: l.fd, events: POLLIN }, on: () => accept(l.fd) });
    for (const w of pool.watched()) if (!w.ready) watch.push({ req: { fd: w.fd, events: POLLIN }, on: () => pool.readable(w) });
    for (const c of pending) {
      watch.push(c.connecting ? { req: { fd: c.stderr!, events: POLLOUT }, on: () => connected(c) } : { req: { fd: c.fd, events: POLLIN }, on: () => read(c) });
    }
    let next = Infinity;
    for (const c of [...pending, ...complete]) next = Math.min(next, c.deadline);
    const timeout = next === Infinity ? -1 : Math.max(0, Math.ceil(next - performance.now()));
    polling = true;
    pollAsync(watch.map((w) => w.req), timeout, (revents) => {
      polling = false;
      if (stopping) return; // the fds it watched are being closed
      if (revents instanceof Error) {
        log.daemon('err', `poll: ${revents.message}`);
        exitNow(1);
      }
      revents.forEach((r, i) => {
        if (r !== 0) watch[i]!.on();
      });
      const now = performance.now();
      for (const c of [...pending]) {
        if (now >= c.deadline) end(c, undefined, 'notice', requestLog.timeout(options.timeout, c.connecting ? 'the stderr connection' : c.reader.name, c.peer.address));
      }
      for (const c of [...complete]) {
        if (now >= c.deadline) {
          complete.splice(complete.indexOf(c), 1);
          end(c, Diagnostic.tryAgain, 'notice', `timeout (${options.timeout} s) waiting for a per-connection rexecd for ${c.peer.address}`);
        }
      }
      dispatch();
      setImmediate(round);
    });
  };

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const l of listeners) close(l.fd);
    // Reap the idle workers, then go.  Not process.exit(): it would wait for the
    // poll on koffi's worker thread.  Sessions already handed over run on.
    void pool.stop().then(() => exitNow(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', stop);

  pool.fill();
  announce(listeners.map((l) => l.name));
  round();
}

/** A few bytes to a connection that is not ours to wait for: best effort, never blocks. */
function sendNow(fd: number, bytes: Buffer): void {
  try {
    sendWithFds(fd, bytes, []);
  } catch {
    // The client is gone or its window is full; closing is all that is left.
  }
}

function announce(names: string[]): void {
  const first = names[0]!;
  const [host, port] = [first.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), first.replace(/.*:/, '')];
  const lines = [`rexecd: listening on ${names.join(', ')} (Ctrl-C or SIGTERM stops it)`];
  lines.push(`  try:  rexec -P ${port} -l USER ${host.includes(':') ? `[${host}]` : host} id`);
  const uid = process.getuid!();
  if (uid !== 0) {
    const name = require('node:os').userInfo().username as string;
    lines.push(`  note: not running as root (uid ${uid}): rexecd cannot become other users here, so only`);
    lines.push(`        ${name} can log in, and only through PAM (pam_unix checks its own user's password).`);
    lines.push('        Run it as root to serve every user.');
  }
  process.stdout.write(lines.join('\n') + '\n');
}

/** The per-connection rexecd gets every option but the listener's own. */
export function withoutListenOptions(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--listen' || a === '--max-connections') {
      i++;
      continue;
    }
    if (a.startsWith('--listen=') || a.startsWith('--max-connections=')) continue;
    out.push(a);
  }
  return out;
}
