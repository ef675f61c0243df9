/**
 * The listener's pre-started single-use workers.  Each is rexecd started as inetd
 * would start it (a fresh environment, fds 0-2 on /dev/null, cwd /) plus a unix
 * socket on fd 3.  It loads everything a login needs (worker.ts), says "ready",
 * waits for exactly one request, serves it and becomes the user's shell: no state
 * is shared between connections, and Node's start-up is off the connection's path.
 *
 * The pool keeps `spare` workers ready, more while logins come in quick
 * succession, starts more while complete requests wait for one (a burst), lets
 * the extra ones go when they have idled a while, and
 * replaces a worker that has waited longer than MAX_AGE_MS (so that edits of
 * /etc/pam.d, read by pam_start, are seen).  Starting a replacement must not
 * compete with a login in progress: it starts once the login it replaces has been
 * decided (the worker's outcome arrived, just before its exec), at the lowest CPU
 * priority, and gets the normal one when it is handed a connection.  (Started at
 * the handoff instead, at nice 19, the Node start on the other core still cost the
 * login ~1 ms with the SHA-512 user: docs/benchmark.md.)  A worker that a request
 * is already waiting for starts at once (or is raised) at the normal priority.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { close } from '../sys/fd';
import { recvNow, sendAll } from '../sys/socket';
import { seqpacketPair } from '../sys/listen-socket';
import type { Outcome } from '../session';

/** A worker older than this is replaced rather than used. */
export const MAX_AGE_MS = 5 * 60_000;
/** A worker beyond the spare ones that has idled this long is let go. */
const EXTRA_IDLE_MS = 30_000;
/**
 * Logins come in runs (a script looping over hosts, a burst).  A worker takes
 * ~50 ms to become ready, so for every LOGINS_PER_EXTRA logins in the last second
 * one more is kept ready (up to MAX_READY): the next login finds a worker that has
 * finished starting, and a steady trickle keeps only `spare` (measured: at 10 logins
 * a second 1 extra, 8 would have held ~50 MiB of workers nobody used).
 */
const DEMAND_WINDOW_MS = 1000;
const LOGINS_PER_EXTRA = 10;
const MAX_READY = 8;
/** Logins remembered for that count: as many as MAX_READY extras take. */
const TAKES_KEPT = MAX_READY * LOGINS_PER_EXTRA;
/** Workers starting at once, at most: a burst must not fork Node processes without bound. */
const MAX_STARTING = 4;
/** After a worker died before it was ready, no new one starts for this long. */
const RESTART_HOLD_MS = 1000;
/** nice(1) values: starting workers yield to everything else; a login does not. */
const STARTING_PRIORITY = 19;
const SERVING_PRIORITY = 0;

export interface PoolWorker {
  readonly child: ChildProcess;
  /** Our end of the worker's socket. */
  readonly fd: number;
  readonly started: number;
  /**
   * starting → ready → serving (handed a connection) → decided (its login's outcome
   * arrived: its replacement may start); a serving or decided worker is a session.
   */
  state: 'starting' | 'ready' | 'serving' | 'decided';
}

const isSession = (w: PoolWorker): boolean => w.state === 'serving' || w.state === 'decided';

/** The byte a worker sends for each outcome of its login (worker.ts writes them). */
export const OUTCOME_BYTES: Record<Outcome, number> = { login: 0x4c, refused: 0x52, invalid: 0x49, timeout: 0x54, gone: 0x47, error: 0x45 };
const READY = 0x21;
const OUTCOMES = new Map<number, Outcome>(Object.entries(OUTCOME_BYTES).map(([k, v]) => [v, k as Outcome]));

export interface PoolEvents {
  /** The set of fds to watch changed (a worker started, became ready or left). */
  changed(): void;
  /** A serving worker said how its login ended. */
  outcome(worker: PoolWorker, outcome: Outcome): void;
  /** The process a worker became (the user's shell, or the worker itself) exited. */
  sessionEnded(worker: PoolWorker): void;
  /** A worker died before it was ready: something is wrong with the installation. */
  failedToStart(worker: PoolWorker, how: string): void;
  /** No worker could be started (its socket pair or process): the system is short of something. */
  cannotStart(why: string): void;
}

export class Pool {
  private readonly workers = new Set<PoolWorker>();
  private stopping = false;
  private holdUntil = 0;
  /** When the recent logins took their workers (the last TAKES_KEPT of them). */
  private readonly takes: number[] = [];

  constructor(
    /** The program and arguments that start a worker. */
    private readonly command: readonly [string, readonly string[]],
    private readonly spare: number,
    /** Never more workers ready than this (the listener's --max-connections). */
    private readonly max: number,
    private readonly events: PoolEvents,
  ) {}

  private count(state: PoolWorker['state']): number {
    let n = 0;
    for (const w of this.workers) if (w.state === state) n++;
    return n;
  }

  /** Workers to keep ready: `spare`, and more while logins come in quick succession. */
  private readyTarget(): number {
    const since = performance.now() - DEMAND_WINDOW_MS;
    const recent = this.takes.filter((t) => t >= since).length;
    return Math.max(this.spare, Math.min(this.spare + Math.floor(recent / LOGINS_PER_EXTRA), MAX_READY, this.max));
  }

  /**
   * Keep the ready target of workers ready or starting, plus one for each of
   * `waiting` requests that have none, starting at most MAX_STARTING at a time.
   */
  fill(waiting = 0): void {
    const wanted = this.readyTarget() + waiting;
    if (this.stopping || performance.now() < this.holdUntil) return;
    // A worker someone waits for must not be starved by the logins in progress: at
    // the lowest priority it would be, exactly when the machine is busiest.
    const nice = waiting > 0 ? SERVING_PRIORITY : STARTING_PRIORITY;
    if (waiting > 0) for (const w of this.workers) if (w.state === 'starting' && w.child.pid !== undefined) setNice(w.child.pid, nice);
    // A login being decided keeps the machine to itself: the worker that replaces
    // it starts once its outcome has arrived (nobody waits for one meanwhile).
    const deciding = waiting > 0 ? 0 : this.count('serving');
    while (this.count('ready') + this.count('starting') + deciding < wanted && this.count('starting') < MAX_STARTING) {
      if (!this.start(nice)) return;
    }
  }

  /** Start a worker; false when none could be started. */
  private start(nice: number): boolean {
    const [file, args] = this.command;
    let ours: number;
    let child: ChildProcess;
    try {
      let theirs: number;
      [ours, theirs] = seqpacketPair();
      try {
        child = spawn(file, args, { stdio: ['ignore', 'ignore', 'ignore', theirs], env: {}, cwd: '/' });
      } catch (e) {
        close(ours);
        throw e;
      } finally {
        close(theirs);
      }
    } catch (e) {
      // Out of descriptors or processes: the listener serves on; starts wait a while.
      this.holdUntil = performance.now() + RESTART_HOLD_MS;
      this.events.cannotStart((e as Error).message);
      return false;
    }
    const worker: PoolWorker = { child, fd: ours, started: performance.now(), state: 'starting' };
    this.workers.add(worker);
    if (child.pid !== undefined) setNice(child.pid, nice);
    child.on('error', () => this.gone(worker, 'could not be started'));
    child.on('exit', (code, signal) => this.gone(worker, signal ? `killed by ${signal}` : `exited ${code}`));
    this.events.changed();
    return true;
  }

  /** A worker's process is gone: as a session that ended, or as a worker lost. */
  private gone(worker: PoolWorker, how: string): void {
    if (isSession(worker)) {
      // Its outcome may still wait in the socket: the exit can be seen first.
      if (this.workers.has(worker)) this.readable(worker);
      return this.events.sessionEnded(worker);
    }
    // Its socket's EOF is often seen first (readable() has let it go by then); a
    // worker that never became ready is a failed start either way.
    const watched = this.workers.delete(worker);
    if (watched) close(worker.fd);
    if (worker.state === 'starting' && !this.stopping) {
      this.holdUntil = performance.now() + RESTART_HOLD_MS;
      this.events.failedToStart(worker, how);
    }
    if (watched) this.events.changed();
  }

  /** The fds to watch: a starting worker says "ready" (or dies), a serving one its outcome, a decided one EOF at its exec. */
  watched(): PoolWorker[] {
    return [...this.workers].filter((w) => w.state !== 'ready');
  }

  /** A worker's socket became readable: its ready byte, its outcome, or EOF. */
  readable(worker: PoolWorker): void {
    if (!this.workers.has(worker)) return; // let go meanwhile (its exit came first): its fd is not ours now
    const byte = Buffer.alloc(1);
    let n: number;
    try {
      n = recvNow(worker.fd, byte, 1, false);
    } catch {
      n = 0;
    }
    if (n < 0) return;
    if (n === 1 && byte[0] === READY && worker.state === 'starting') {
      worker.state = 'ready';
      // Raised because a request waited: while it waits in turn, it yields again.
      if (worker.child.pid !== undefined) setNice(worker.child.pid, STARTING_PRIORITY);
      this.events.changed();
      return;
    }
    const outcome = n === 1 ? OUTCOMES.get(byte[0]!) : undefined;
    if (outcome && worker.state === 'serving') {
      worker.state = 'decided';
      this.events.outcome(worker, outcome);
      return this.fill();
    }
    // EOF (the worker exec'd or exited) or nonsense: stop listening to it.
    this.workers.delete(worker);
    close(worker.fd);
    if (worker.state === 'starting') worker.child.kill('SIGKILL');
    this.events.changed();
    if (isSession(worker)) this.fill(); // its replacement, if it waited for this
  }

  /** Take a ready worker (the youngest: the oldest ones age out), at the normal priority. */
  take(): PoolWorker | undefined {
    let best: PoolWorker | undefined;
    for (const w of this.workers) if (w.state === 'ready' && (!best || w.started > best.started)) best = w;
    if (!best) return undefined;
    best.state = 'serving';
    this.takes.push(performance.now());
    if (this.takes.length > TAKES_KEPT) this.takes.shift();
    if (best.child.pid !== undefined) setNice(best.child.pid, SERVING_PRIORITY);
    return best;
  }

  /** Let go of workers that are too old, and of extra ones idle too long. */
  retire(now: number): void {
    let ready = this.count('ready');
    const target = this.readyTarget();
    for (const w of this.workers) {
      if (w.state !== 'ready') continue;
      const age = now - w.started;
      if (age > MAX_AGE_MS || (ready > target && age > EXTRA_IDLE_MS)) {
        ready--;
        this.workers.delete(w);
        close(w.fd);
        w.child.kill('SIGTERM');
        this.events.changed();
      }
    }
    this.fill();
  }

  /** Stop the workers that have no connection yet; resolves once they are reaped (or after 2 s). */
  stop(): Promise<void> {
    this.stopping = true;
    const waiting: Promise<void>[] = [];
    for (const w of this.workers) {
      if (isSession(w)) continue;
      this.workers.delete(w);
      close(w.fd);
      const gone = w.child.exitCode !== null || w.child.signalCode !== null;
      w.child.kill('SIGTERM');
      if (!gone) waiting.push(new Promise<void>((r) => w.child.once('exit', () => r())));
    }
    return Promise.race([Promise.all(waiting).then(() => {}), new Promise<void>((r) => setTimeout(r, 2000).unref())]);
  }
}

/** A worker says it is ready: one byte on its socket. */
export function sayReady(fd: number): void {
  sendAll(fd, Buffer.from([READY]), performance.now() + 1000);
}

/** setpriority(2) of a worker; only root may raise it back, and the listener is root. */
function setNice(pid: number, priority: number): void {
  try {
    setPriority(pid, priority);
  } catch {
    // The process is already gone, or we may not (not root): it only costs latency.
  }
}
