/**
 * Pre-started per-connection rexecd processes for --listen.  Each is started as
 * inetd would start one (a fresh environment, fds 0-2 on /dev/null, cwd /), plus a
 * unix socket on fd 3 on which it waits for exactly one connection; it serves that
 * one and becomes the user's shell, so no state is shared between connections.
 * Starting Node is thereby moved off the connection's critical path.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { isSingleExecutable } from '../launch';
import { close, recvNow, seqpacketPair } from '../sys/socket';

export interface PoolWorker {
  readonly child: ChildProcess;
  /** Our end of the worker's socket. */
  readonly fd: number;
  ready: boolean;
}

/** How this program is started again: node + script, or the single executable alone. */
function selfCommand(): [string, string[]] {
  return isSingleExecutable() ? [process.execPath, []] : [process.execPath, [process.argv[1]!]];
}

export class Pool {
  private readonly workers = new Set<PoolWorker>();
  private readonly command: [string, string[]];

  constructor(
    private readonly args: readonly string[],
    private readonly size: number,
    /** Called when the set of fds to watch changed (a worker started or left). */
    private readonly changed: () => void,
    /** Called when a worker that was handed a connection exits. */
    private readonly sessionEnded: () => void,
  ) {
    this.command = selfCommand();
  }

  /** Start workers until `size` are starting or ready. */
  fill(): void {
    while (this.workers.size < this.size) this.start();
  }

  private start(): void {
    const [ours, theirs] = seqpacketPair();
    const [file, pre] = this.command;
    const child = spawn(file, [...pre, ...this.args, '--pool-worker'], {
      stdio: ['ignore', 'ignore', 'ignore', theirs],
      env: {},
      cwd: '/',
    });
    close(theirs);
    const worker: PoolWorker = { child, fd: ours, ready: false };
    this.workers.add(worker);
    child.on('error', () => this.drop(worker));
    child.on('exit', () => this.drop(worker));
    this.changed();
  }

  private drop(worker: PoolWorker): void {
    if (!this.workers.delete(worker)) return;
    close(worker.fd);
    this.changed();
    this.fill();
  }

  /** The fds to watch: a worker says "ready" (or dies) on its socket. */
  watched(): PoolWorker[] {
    return [...this.workers];
  }

  /** A worker's socket became readable: its ready byte, or EOF because it died. */
  readable(worker: PoolWorker): void {
    const byte = Buffer.alloc(1);
    let n: number;
    try {
      n = recvNow(worker.fd, byte, 1, false);
    } catch {
      n = 0;
    }
    if (n === 1) worker.ready = true;
    else if (n === 0) this.drop(worker);
  }

  /** Take a ready worker out of the pool (the caller hands it one connection). */
  take(): PoolWorker | undefined {
    for (const w of this.workers) {
      if (!w.ready) continue;
      this.workers.delete(w);
      w.child.removeAllListeners('exit');
      w.child.on('exit', () => this.sessionEnded());
      this.fill();
      return w;
    }
    return undefined;
  }

  /** Stop the workers that have no connection yet; resolves once they are reaped (or after 2 s). */
  stop(): Promise<void> {
    const waiting = [...this.workers].map((w) => {
      w.child.removeAllListeners('exit');
      const gone = w.child.exitCode !== null || w.child.signalCode !== null;
      w.child.kill('SIGTERM');
      return gone ? Promise.resolve() : new Promise<void>((r) => w.child.once('exit', () => r()));
    });
    this.workers.clear();
    return Promise.race([Promise.all(waiting).then(() => {}), new Promise<void>((r) => setTimeout(r, 2000))]);
  }
}
