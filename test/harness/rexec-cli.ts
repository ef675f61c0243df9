// Runs our rexec client (dist/client/rexec.js) as a user would: a real process with
// its own stdin, stdout and stderr, and (optionally) a pseudo-terminal.
import { spawn, execFileSync, type ChildProcess, type StdioNull, type StdioPipe } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { NODE, REXEC } from './paths';
import { memoryKb, pidOf } from './processes';

/** Where a command runs: here, or inside a world's mount namespace (its /etc). */
export interface Namespace {
  inside(argv: readonly string[]): string[];
}

export interface RexecOptions {
  /** The command line after `rexec`. */
  readonly args: readonly string[];
  /** The whole environment (default: PATH and HOME=/nonexistent). */
  readonly env?: NodeJS.ProcessEnv;
  /** For stdin (a pipe): bytes, or a stream to pipe in. */
  readonly input?: Buffer | string | Readable;
  /** Overrides input's pipe: 'ignore', 'pipe', or an fd. */
  readonly stdin?: StdioNull | StdioPipe | number;
  /** With stdin 'pipe': keep our end open until rexec exits. */
  readonly holdStdin?: boolean;
  /** An fd for rexec's stdout instead of a pipe (then stdout is empty). */
  readonly stdoutFd?: number;
  /** Hash stdout instead of keeping it (big transfers). */
  readonly hashStdout?: boolean;
  /** ms to stop reading stdout once the first byte came (back-pressure). */
  readonly pauseStdout?: number;
  /** Start in a new session, without a controlling terminal. */
  readonly detached?: boolean;
  readonly timeout?: number;
  /** Run rexec inside this namespace (nsenter execs it: the pid is rexec's). */
  readonly namespace?: Namespace;
  /** Called at once with the child. */
  readonly onSpawn?: (child: ChildProcess) => void;
}

export interface RexecResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  readonly stdoutBytes: number;
  /** sha256 of stdout in hex, with hashStdout. */
  readonly sha256: string | undefined;
  readonly peakRssKb: number;
  readonly ms: number;
}

const DEFAULT_ENV = { PATH: process.env.PATH, HOME: '/nonexistent' };

/** argv to run rexec with args, in a namespace or here. */
function rexecArgv(args: readonly string[], namespace: Namespace | undefined): [string, string[]] {
  const argv = [NODE, REXEC, ...args];
  return namespace ? ['nsenter', namespace.inside(argv)] : [NODE, argv.slice(1)];
}

/** Run rexec. */
export function runRexec({ args, env, input, stdin, stdoutFd, holdStdin = false, hashStdout = false, pauseStdout = 0, detached = false, timeout = 30000, namespace, onSpawn }: RexecOptions): Promise<RexecResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const [command, argv] = rexecArgv(args, namespace);
    const child = spawn(command, argv, {
      stdio: [stdin ?? (input === undefined ? 'ignore' : 'pipe'), stdoutFd ?? 'pipe', 'pipe'],
      env: env ?? DEFAULT_ENV,
      detached,
    });
    const pid = pidOf(child);
    onSpawn?.(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const hash = createHash('sha256');
    let outBytes = 0;
    let paused = false;
    const { stdout } = child;
    stdout?.on('data', (d: Buffer) => {
      outBytes += d.length;
      if (hashStdout) hash.update(d);
      else out.push(d);
      if (pauseStdout && !paused) {
        paused = true;
        stdout.pause();
        setTimeout(() => stdout.resume(), pauseStdout);
      }
    });
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    let peak = 0;
    const sampler = setInterval(() => {
      const kb = memoryKb(pid, 'VmHWM');
      if (kb !== undefined) peak = Math.max(peak, kb);
    }, 50);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rexec timed out: ${args.join(' ')}`));
    }, timeout);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(sampler);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err),
        stdoutBytes: outBytes,
        sha256: hashStdout ? hash.digest('hex') : undefined,
        peakRssKb: peak,
        ms: performance.now() - t0,
      });
    });
    const { stdin: pipe } = child;
    if (pipe) {
      pipe.on('error', () => {});
      if (holdStdin) child.once('exit', () => pipe.end());
      else if (input !== undefined && typeof input !== 'string' && !Buffer.isBuffer(input)) input.pipe(pipe);
      else pipe.end(input);
    }
  });
}

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The ECHO flag in stty -a output; undefined when it is not there. */
function echoFlag(sttyOutput: string): boolean | undefined {
  const words = sttyOutput.split(/[\s;]+/);
  return words.includes('echo') ? true : words.includes('-echo') ? false : undefined;
}

/** The ECHO flag of a terminal, from stty; undefined when it cannot be read. */
function echoOf(tty: string): boolean | undefined {
  try {
    return echoFlag(execFileSync('stty', ['-a', '-F', tty]).toString());
  } catch {
    return undefined;
  }
}

export interface PtyOptions {
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Typed with Enter when `Password:` shows. */
  readonly answer?: string;
  /** Sent to rexec instead when `Password:` shows. */
  readonly signal?: NodeJS.Signals;
  readonly timeout?: number;
}

export interface PtyResult {
  /** What the terminal showed while rexec ran. */
  readonly output: string;
  /** rexec's exit status; null if the shell never printed it. */
  readonly exit: number | null;
  readonly prompted: boolean;
  /** The terminal's ECHO flag while the prompt showed (undefined: unreadable). */
  readonly echoWhilePrompting: boolean | undefined;
  /** The terminal's ECHO flag once rexec had exited. */
  readonly echoAfter: boolean | undefined;
}

/**
 * Run rexec on a fresh pseudo-terminal, with script(1) from util-linux (bsdutils,
 * essential on Debian): rexec runs in a shell on the terminal, which afterwards
 * prints rexec's exit status and the terminal's modes.  When `Password:` shows,
 * types answer + Enter, or sends signal to rexec.
 */
export function runOnPty({ args, env, answer, signal, timeout = 20000 }: PtyOptions): Promise<PtyResult> {
  const argv = [NODE, REXEC, ...args].map(shq).join(' ');
  const inner = `${argv} & pid=$!; echo "[pid=$pid]"; wait $pid; echo "[rc=$?]"; stty -a`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', inner, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: env ?? DEFAULT_ENV,
    });
    let out = '';
    let prompted = false;
    let echoWhilePrompting: boolean | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rexec on a pty timed out; terminal showed: ${JSON.stringify(out)}`));
    }, timeout);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (prompted || !out.includes('Password:')) return;
      const pid = Number(/\[pid=(\d+)\]/.exec(out)?.[1]);
      if (!pid) return;
      prompted = true;
      // The prompt is written once echo is off; read the mode of rexec's terminal.
      let tty: string | undefined;
      try {
        tty = execFileSync('readlink', [`/proc/${pid}/fd/1`]).toString().trim();
      } catch {
        tty = undefined;
      }
      echoWhilePrompting = tty ? echoOf(tty) : undefined;
      if (signal) process.kill(pid, signal);
      else if (answer !== undefined) child.stdin.write(`${answer}\r`);
    });
    child.stdin.on('error', () => {});
    child.on('close', () => {
      clearTimeout(timer);
      child.stdin.end();
      const rc = /\[rc=(\d+)\]/.exec(out);
      resolve({
        output: out.slice(out.indexOf(']') + 1, rc ? rc.index : undefined).replace(/^\r?\n/, ''),
        exit: rc ? Number(rc[1]) : null,
        prompted,
        echoWhilePrompting,
        echoAfter: echoFlag(out.slice(rc ? rc.index : out.length)),
      });
    });
  });
}
