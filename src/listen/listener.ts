/**
 * The listener (protocol.md §1.4): one process that accepts connections on listening
 * sockets — its own (--listen), or a launcher's (inetd "wait" on fd 0, systemd
 * Accept=no on fds 3...) — and reads each request itself, without blocking on any
 * of them: a connection that is slow to send costs a few hundred bytes here, not a
 * process.  A complete request goes, with its connection and stderr channel, to a
 * pre-started single-use worker (pool.ts, worker.ts), which authenticates and
 * execs exactly as one started by inetd does.  The listener consumes nothing past
 * the command's NUL, and its listening sockets never reach a worker or a shell.
 *
 * All socket work is non-blocking system calls; the one wait, poll(2), runs on a
 * koffi worker thread so that the event loop stays free for child processes and
 * signals.
 */
import { openSync, closeSync } from 'node:fs';
import { isSingleExecutable, silenceStdio, type Launch } from '../launch';
import { LINGER_BYTES, LINGER_MS, pumpRequest, SHUT_WR } from '../io/connection';
import { requestLog } from '../io/log-texts';
import { openLog, type Log } from '../log';
import { requestLimits, workerArgv, type Options } from '../options';
import { diagnosticBytes, Diagnostic, type DiagnosticText } from '../protocol/diagnostics';
import { RequestReader, type Request } from '../protocol/request';
import type { Outcome } from '../session';
import { close, setCloseOnExec, setNonBlocking } from '../sys/fd';
import { acceptNow, listenTcp, pollAsync, pollNow, seqpacketPair, sendWithFds, type PollRequest } from '../sys/listen-socket';
import { ENFILE, EMFILE, ENOBUFS, ENOMEM } from '../sys/errno';
import { SysError } from '../sys/koffi';
import { exitNow, fileLimit, setFileLimit } from '../sys/process';
import { finishConnect, localAddress, peerAddress, POLLIN, POLLOUT, recvNow, sendNow, shutdown, startConnect, withPort, type SockAddr } from '../sys/socket';
import { encodeHandoff } from './handoff';
import { Pool, type PoolWorker } from './pool';
import { SourceLimits, type PenaltyEvent, type Source } from './source-limits';

/** Descriptors the listener needs besides its connections: its own, the pool's, slack. */
const FIXED_FDS = 64;
/**
 * Refused connections lingering before their close (see closeGracefully), at most;
 * fewer when the descriptor limit leaves less room beyond FIXED_FDS and the
 * connections (fitToFileLimit), none when it leaves none.
 */
const MAX_LINGERING = 256;
/** Where what a lingering connection still sends is read and dropped. */
const lingerSink = Buffer.alloc(4096);
/** errno values that mean the system, not the client, is short of something. */
const RESOURCE_ERRORS = new Set([EMFILE, ENFILE, ENOBUFS, ENOMEM]);
/** After running out of descriptors, accepting waits this long, doubling up to the max. */
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 1000;
/** How often the pool is looked over (aged workers, idle extras) and the idle exit checked. */
const TICK_MS = 1000;
/** A failure of one kind, or a refusal of one kind from one source, is logged at most this often. */
const ONCE_PER_MINUTE_MS = 60_000;
/** Kinds (and sources) whose last line is remembered, at most. */
const LOGGED_KEYS = 4096;
/** How a worker's outcome counts against the source (protocol.md §6.3). */
const OUTCOME_PENALTY: Record<Outcome, PenaltyEvent | undefined> = {
  login: undefined,
  refused: 'authfail',
  invalid: 'noauth',
  timeout: 'grace-exceeded',
  gone: 'noauth',
  error: undefined,
};

/** A connection whose request is still arriving. */
interface Pending {
  readonly fd: number;
  readonly peer: SockAddr;
  readonly source: Source;
  readonly local: SockAddr;
  readonly deadline: number;
  readonly reader: RequestReader;
  /** The stderr channel, once dialled (connecting while `connectingTo` is set). */
  stderr?: number;
  connectingTo?: number;
  request?: Request;
}

interface Listening {
  readonly fd: number;
  readonly name: string;
}

export function startListener(options: Options, launched?: Extract<Launch, { kind: 'listener' }>): void {
  const log = openLog();
  const fieldLimits = requestLimits(options);
  const sockets = launched ? adopt(launched.fds) : bind(options);
  if (launched) silenceStdio(launched.fds);
  const maxConnections = fitToFileLimit(options.maxConnections, log, !launched);
  const maxLingering = Math.max(0, Math.min(MAX_LINGERING, fileLimit().soft - FIXED_FDS - 2 * maxConnections));

  const pending = new Set<Pending>();
  const complete: Pending[] = [];
  const limits = new SourceLimits(options.sourceLimits);
  /** Workers handed a connection whose login has not ended yet, and its source. */
  const authenticating = new Map<PoolWorker, Source>();
  let sessions = 0;
  const active = (): number => pending.size + complete.length + sessions;
  let lastActivity = performance.now();

  // A poll in flight watches a fixed set of fds; this pair lets the event loop wake
  // it when the set changes (a worker started, a session ended).
  const [wakeRead, wakeWrite] = seqpacketPair();
  let polling = false;
  const wake = (): void => {
    if (polling) sendNow(wakeWrite, Buffer.from('w'));
  };

  const pool = new Pool(selfCommand(options), Math.min(options.spare, maxConnections), maxConnections, {
    changed: wake,
    outcome: (worker: PoolWorker, outcome: Outcome) => loginEnded(worker, OUTCOME_PENALTY[outcome]),
    sessionEnded: (worker: PoolWorker) => {
      loginEnded(worker, undefined); // a worker that died before it said how its login ended
      sessions--;
      lastActivity = performance.now();
      wake();
    },
    failedToStart: (_worker, how) => logFailure('worker failed', `a worker ${how} before it was ready`),
    cannotStart: (why) => logFailure('worker not started', `cannot start a worker: ${why}`),
  });

  // One line per key a minute, not one per event, from a bounded table of keys: a
  // broken installation, a descriptor shortage or a flood must not flood the log.
  const lastLogged = new Map<string, number>();
  const logOncePerMinute = (key: string, level: 'err' | 'notice', message: string): void => {
    const now = performance.now();
    const last = lastLogged.get(key);
    if (last !== undefined && now - last < ONCE_PER_MINUTE_MS) return;
    lastLogged.delete(key);
    lastLogged.set(key, now);
    if (lastLogged.size > LOGGED_KEYS) lastLogged.delete(lastLogged.keys().next().value!);
    log.daemon(level, message);
  };
  /** rexecd's own failures, one line per kind (never per client). */
  const logFailure = (kind: string, message: string): void => logOncePerMinute(`failure: ${kind}`, 'err', message);
  /** Refusals before a connection is admitted, one line per kind and source. */
  const logRefusal = (key: string, message: string): void => logOncePerMinute(`refusal: ${key}`, 'notice', message);

  const penalise = (source: Source, event: PenaltyEvent | undefined): void => {
    if (!event) return;
    const change = limits.penalise(source, event);
    if (change && change.active && change.kind !== 'extended') {
      log.daemon('notice', `penalty for ${source.block}: refused for ${Math.round(change.seconds)} s (--per-source-penalties)`);
    }
  };
  /** A worker's login ended: the source's connection no longer counts as unauthenticated. */
  const loginEnded = (worker: PoolWorker, event: PenaltyEvent | undefined): void => {
    const source = authenticating.get(worker);
    if (!source) return;
    authenticating.delete(worker);
    limits.finished(source);
    penalise(source, event);
  };

  // Connections that heard their diagnostic: FIN sent, what the client still sends
  // read and dropped for a moment before the close (see closeGracefully), so that no
  // reset overtakes the diagnostic.  At most MAX_LINGERING at a time.
  const lingering = new Map<number, { until: number; left: number }>();
  const closeSoon = (fd: number): void => {
    try {
      if (lingering.size >= maxLingering) throw new Error('too many lingering');
      shutdown(fd, SHUT_WR);
      lingering.set(fd, { until: performance.now() + LINGER_MS, left: LINGER_BYTES });
    } catch {
      close(fd);
    }
  };
  const drainLingering = (fd: number): void => {
    const l = lingering.get(fd)!;
    for (;;) {
      let n: number;
      try {
        n = recvNow(fd, lingerSink, Math.min(lingerSink.length, l.left), false);
      } catch {
        n = 0;
      }
      if (n > 0) lingerSink.fill(0, 0, n); // a refused request's password, perhaps
      if (n < 0) return;
      l.left -= n;
      if (n === 0 || l.left <= 0) {
        lingering.delete(fd);
        close(fd);
        return;
      }
    }
  };
  /** The last word to a connection we will not serve, then a graceful close. */
  const answerAndClose = (fd: number, text: DiagnosticText): void => {
    answer(fd, text);
    closeSoon(fd);
  };

  /** Our copies of a connection's descriptors and request, gone (a worker may hold its own). */
  const release = (c: Pending, lingerOnClose = false): void => {
    pending.delete(c);
    if (lingerOnClose) closeSoon(c.fd);
    else close(c.fd);
    if (c.stderr !== undefined) close(c.stderr);
    c.reader.wipe();
    c.request?.password.fill(0);
  };
  /** A connection that never reached a worker is done with: it no longer counts; maybe a penalty. */
  const drop = (c: Pending, event?: PenaltyEvent, lingerOnClose = false): void => {
    release(c, lingerOnClose);
    limits.finished(c.source);
    penalise(c.source, event);
  };
  const end = (c: Pending, text: DiagnosticText | undefined, level: 'notice' | 'info', why: string, event?: PenaltyEvent): void => {
    log.daemon(level, why);
    if (text !== undefined) answer(c.fd, text);
    drop(c, event, text !== undefined);
  };

  // ---------------------------------------------------------------- accepting
  let acceptPausedUntil = 0;
  let backoff = BACKOFF_MIN_MS;
  let reserve: number | undefined = openReserve();

  const accept = (listening: Listening): void => {
    for (;;) {
      const r = acceptNow(listening.fd);
      if (r.kind === 'none') return;
      if (r.kind === 'exhausted') return exhausted(listening, r.error.message);
      backoff = BACKOFF_MIN_MS;
      lastActivity = performance.now();
      admit(r.fd);
    }
  };

  /**
   * Out of descriptors (or memory): accepting stops for a while, once logged.  The
   * spare descriptor kept for this lets one waiting client hear "Try again." rather
   * than wait in the backlog (libuv's trick, nginx's log line).
   */
  const exhausted = (listening: Listening, why: string): void => {
    if (reserve !== undefined) {
      closeSync(reserve);
      reserve = undefined;
      const r = acceptNow(listening.fd);
      if (r.kind === 'connection') {
        answer(r.fd, Diagnostic.tryAgain);
        close(r.fd);
      }
      reserve = openReserve();
    }
    acceptPausedUntil = performance.now() + backoff;
    logFailure(`accept on ${listening.name}`, `${why} on ${listening.name}: pausing accepts for ${backoff} ms (${active()} connections, --max-connections ${maxConnections})`);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  };

  const admit = (fd: number): void => {
    let peer: SockAddr;
    try {
      peer = peerAddress(fd);
    } catch {
      close(fd); // reset before we looked: nothing to serve
      return;
    }
    const source = limits.sourceOf(peer);
    const refusal = active() >= maxConnections ? `${maxConnections} connections already (--max-connections)` : limits.refusal(source);
    if (refusal !== undefined) {
      // "Try again.", whatever the reason: nothing tells whether a password was right.
      logRefusal(`${source.block} ${refusal.replace(/\d+/g, 'N')}`, `refused ${peer.address}: ${refusal}`);
      answerAndClose(fd, Diagnostic.tryAgain);
      return;
    }
    let local: SockAddr;
    try {
      local = localAddress(fd); // the stderr channel is dialled from it
    } catch {
      close(fd);
      return;
    }
    if (options.logConnections) log.daemon('info', requestLog.connection(peer.address, peer.port));
    limits.started(source);
    const c: Pending = { fd, peer, source, local, deadline: performance.now() + options.timeout * 1000, reader: new RequestReader(fieldLimits) };
    pending.add(c);
    read(c); // the request often arrives with the connection
  };

  // ---------------------------------------------------------------- reading
  /** Read what the connection holds; move on as the request says (protocol.md §2.1-§2.5). */
  const read = (c: Pending): void => {
    const from = c.peer.address;
    let event;
    try {
      event = pumpRequest(c.fd, c.reader);
    } catch (e) {
      return end(c, Diagnostic.tryAgain, 'notice', `failed reading from ${from}: ${(e as Error).message}`);
    }
    switch (event.kind) {
      case 'more':
        return;
      case 'closed':
        return end(c, undefined, 'info', requestLog.clientLeft(c.reader.waitingFor, from, event.how), 'noauth');
      case 'refuse':
        return end(c, event.diagnostic, 'notice', requestLog.refused(event, from), 'noauth');
      case 'connect-back':
        try {
          c.stderr = startConnect(c.local, withPort(c.peer, event.port));
          c.connectingTo = event.port;
        } catch (e) {
          // Short of descriptors or memory is our failure, not the client's: no penalty.
          const ours = e instanceof SysError && RESOURCE_ERRORS.has(e.errno);
          return end(c, Diagnostic.cantConnectStderr, 'notice', requestLog.cantConnect(from, event.port, (e as Error).message), ours ? undefined : 'noauth');
        }
        return;
      case 'request':
        c.request = event.request;
        pending.delete(c);
        complete.push(c);
        return dispatch();
    }
  };

  const connected = (c: Pending): void => {
    try {
      finishConnect(c.stderr!);
    } catch (e) {
      return end(c, Diagnostic.cantConnectStderr, 'notice', requestLog.cantConnect(c.peer.address, c.connectingTo!, (e as Error).message), 'noauth');
    }
    c.connectingTo = undefined;
    c.reader.connected();
    read(c);
  };

  // ---------------------------------------------------------------- handing over
  /** Hand complete requests to ready workers, oldest first; start workers for the rest. */
  const dispatch = (): void => {
    while (complete.length > 0) {
      const c = complete[0]!;
      const worker = pool.take();
      if (!worker) break;
      complete.shift();
      handOver(c, worker);
    }
    pool.fill(complete.length);
  };

  const handOver = (c: Pending, worker: PoolWorker): void => {
    const { user, password, command } = c.request!;
    const message = encodeHandoff({ hasStderr: c.stderr !== undefined, remainingMs: c.deadline - performance.now(), user, password, command });
    sessions++;
    try {
      sendWithFds(worker.fd, message, c.stderr === undefined ? [c.fd] : [c.fd, c.stderr]);
      // The worker's outcome (loginEnded) ends the count from here.
      authenticating.set(worker, c.source);
      release(c);
    } catch (e) {
      logFailure('handoff', `cannot hand ${c.peer.address} to a worker: ${(e as Error).message}`);
      answer(c.fd, Diagnostic.tryAgain);
      worker.child.kill('SIGKILL');
      drop(c, undefined, true);
    } finally {
      message.fill(0);
    }
  };

  // ---------------------------------------------------------------- the loop
  /** One round: poll everything, act on what is ready, expire what is late, again. */
  const round = (): void => {
    if (stopping) return; // its fds are closed; the pool's workers are being reaped
    const watch: { req: PollRequest; on: () => void }[] = [];
    watch.push({ req: { fd: wakeRead, events: POLLIN }, on: () => recvNow(wakeRead, Buffer.alloc(16), 16, false) });
    const now = performance.now();
    // Workers first: an outcome (a penalty) that arrived with a new connection from
    // the same source counts before that connection is judged.
    for (const w of pool.watched()) watch.push({ req: { fd: w.fd, events: POLLIN }, on: () => pool.readable(w) });
    for (const fd of lingering.keys()) watch.push({ req: { fd, events: POLLIN }, on: () => drainLingering(fd) });
    if (now >= acceptPausedUntil) for (const l of sockets) watch.push({ req: { fd: l.fd, events: POLLIN }, on: () => accept(l) });
    let next = now + TICK_MS;
    for (const c of pending) {
      watch.push(c.connectingTo !== undefined ? { req: { fd: c.stderr!, events: POLLOUT }, on: () => connected(c) } : { req: { fd: c.fd, events: POLLIN }, on: () => read(c) });
      next = Math.min(next, c.deadline);
    }
    for (const c of complete) next = Math.min(next, c.deadline);
    for (const l of lingering.values()) next = Math.min(next, l.until);
    if (acceptPausedUntil > now) next = Math.min(next, acceptPausedUntil);
    const requests = watch.map((w) => w.req);
    const handle = (revents: number[]): void => {
      revents.forEach((r, i) => {
        if (r !== 0) watch[i]!.on();
      });
      expire(performance.now()); // may stop the listener (--idle-exit)
      if (stopping) return;
      dispatch();
      setImmediate(round);
    };
    // Often something is ready already (a connect-back on loopback completes at
    // once, the credentials follow it): look without waiting first, and take the
    // hop to koffi's worker thread and back (measured up to ~3 ms on a busy
    // machine) only when there is nothing to do.
    const ready = pollNow(requests);
    if (ready.some((r) => r !== 0)) return handle(ready);
    polling = true;
    pollAsync(requests, Math.max(0, Math.ceil(next - now)), (revents) => {
      polling = false;
      if (stopping) return; // the fds it watched are being closed
      if (revents instanceof Error) {
        log.daemon('err', `poll: ${revents.message}`);
        return exitNow(1);
      }
      handle(revents);
    });
  };

  let lastTick = performance.now();
  const expire = (now: number): void => {
    for (const [fd, l] of lingering) {
      if (now < l.until) continue;
      lingering.delete(fd);
      close(fd);
    }
    for (const c of pending) {
      // Past the deadline nothing more is said, but that the stderr channel failed.
      const text = c.connectingTo !== undefined ? Diagnostic.cantConnectStderr : undefined;
      if (now >= c.deadline) end(c, text, 'notice', requestLog.timeout(options.timeout, c.reader.waitingFor, c.peer.address), 'grace-exceeded');
    }
    for (let i = complete.length - 1; i >= 0; i--) {
      const c = complete[i]!;
      if (now < c.deadline) continue;
      complete.splice(i, 1);
      end(c, Diagnostic.tryAgain, 'notice', `timeout (${options.timeout} s) waiting for a worker for ${c.peer.address}`);
    }
    if (now - lastTick < TICK_MS) return;
    lastTick = now;
    pool.retire(now);
    if (launched && options.idleExit > 0 && pending.size === 0 && complete.length === 0 && now - lastActivity >= options.idleExit * 1000) {
      log.daemon('info', `no connection for ${options.idleExit} s (--idle-exit): exiting; the ${launched.by === 'inetd' ? 'inetd' : 'systemd'} socket starts rexecd again on the next one`);
      stop();
    }
  };

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const l of sockets) close(l.fd);
    for (const c of [...pending, ...complete.splice(0)]) drop(c);
    for (const fd of lingering.keys()) close(fd);
    lingering.clear();
    // Reap the idle workers, then go.  Not process.exit(): it would wait for the
    // poll on koffi's worker thread.  Sessions already handed over run on.
    void pool.stop().then(() => exitNow(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', stop);

  pool.fill();
  if (launched) log.daemon('info', `listening on ${sockets.map((l) => l.name).join(', ')} (from ${launched.by}), --max-connections ${maxConnections}`);
  else announce(sockets.map((l) => l.name));
  round();
}

/** A few bytes to a connection that is not ours to wait for: best effort, never blocks. */
function answer(fd: number, text: DiagnosticText): void {
  try {
    sendNow(fd, diagnosticBytes(text));
  } catch {
    // The client is gone; closing is all that is left.
  }
}

/** A descriptor held in reserve, given up to refuse one connection when none is left. */
function openReserve(): number | undefined {
  try {
    return openSync('/dev/null', 'r');
  } catch {
    return undefined;
  }
}

/** A launcher's listening sockets: non-blocking for us, never inherited by a worker. */
function adopt(fds: readonly number[]): Listening[] {
  return fds.map((fd) => {
    setNonBlocking(fd);
    setCloseOnExec(fd);
    return { fd, name: addressName(localAddress(fd)) };
  });
}

function bind(options: Options): Listening[] {
  return options.listen.map(({ host, port }) => {
    try {
      const fd = listenTcp(host === 'localhost' ? '127.0.0.1' : host, port);
      return { fd, name: addressName(localAddress(fd)) };
    } catch (e) {
      process.stderr.write(`rexecd: cannot listen on ${host}:${port}: ${(e as Error).message}\n`);
      return process.exit(1);
    }
  });
}

function addressName(a: SockAddr): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/**
 * --max-connections within the descriptor limit: a connection being read holds two
 * (itself and its stderr channel).  The soft limit is raised as far as the hard one
 * allows; past that the maximum is lowered, and the log says so.
 */
function fitToFileLimit(maxConnections: number, log: Log, onTerminal: boolean): number {
  const needed = FIXED_FDS + 2 * maxConnections;
  const { soft, hard } = fileLimit();
  if (soft >= needed) return maxConnections;
  const raised = Math.min(needed, hard);
  if (raised > soft) {
    try {
      setFileLimit(raised, hard);
    } catch {
      // Keep the limit we have; the maximum is fitted to it below.
    }
  }
  const { soft: now } = fileLimit();
  if (now >= needed) return maxConnections;
  const fitted = Math.max(1, Math.floor((now - FIXED_FDS) / 2));
  const message = `--max-connections ${maxConnections} needs ${needed} descriptors, but RLIMIT_NOFILE allows ${now} (hard limit ${hard}): serving at most ${fitted} connections at once`;
  log.daemon('warning', message);
  if (onTerminal) process.stderr.write(`rexecd: ${message}\n`);
  return fitted;
}

/** How this program is started again for a worker: node (and its flags) + script, or the single executable. */
function selfCommand(options: Options): [string, string[]] {
  const self = isSingleExecutable() ? [] : [...process.execArgv, process.argv[1]!];
  return [process.execPath, [...self, ...workerArgv(options)]];
}

function announce(names: string[]): void {
  const first = names[0]!;
  const [host, port] = [first.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), first.replace(/.*:/, '')];
  const lines = [`rexecd: listening on ${names.join(', ')} (Ctrl-C or SIGTERM stops it)`];
  lines.push(`  try:  rexec -P ${port} -l USER ${host.includes(':') ? `[${host}]` : host} id`);
  const uid = process.getuid!();
  if (uid !== 0) {
    const name = (require('node:os') as typeof import('node:os')).userInfo().username;
    lines.push(`  note: not running as root (uid ${uid}): rexecd cannot become other users here, so only`);
    lines.push(`        ${name} can log in, and only through PAM (pam_unix checks its own user's password).`);
    lines.push('        Run it as root to serve every user.');
  }
  process.stdout.write(lines.join('\n') + '\n');
}
