// Runs our rexec client (dist/client/rexec.js) as a user would: a real process with
// its own stdin, stdout and stderr, and (optionally) a pseudo-terminal.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, NODE } from './world.mjs';

export const REXEC = join(ROOT, 'dist', 'client', 'rexec.js');

/** VmHWM (peak resident set) of a live process, in kB; undefined once it is gone. */
export function peakRss(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Run rexec.  Returns { code, signal, stdout, stderr (Buffers), peakRssKb, ms, sha256 }.
 *   args        the command line after `rexec`
 *   env         the whole environment (default: PATH and HOME=/nonexistent)
 *   input       Buffer | string for stdin (a pipe), or a Readable to pipe in
 *   stdin       'ignore' | 'pipe' | an fd (number) -- overrides input's pipe
 *   holdStdin   with stdin 'pipe': keep our end open until rexec exits
 *   stdoutFd    an fd for rexec's stdout instead of a pipe (then stdout is empty)
 *   hashStdout  hash stdout instead of keeping it (big transfers): sha256 hex
 *   pauseStdout ms to stop reading stdout once the first byte came (back-pressure)
 *   detached    start in a new session, without a controlling terminal
 *   onSpawn     (child) => void, called at once
 */
export function runRexec({ args, env, input, stdin, stdoutFd, holdStdin = false, hashStdout = false, pauseStdout = 0, detached = false, timeout = 30000, onSpawn } = {}) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [REXEC, ...args], {
      stdio: [stdin ?? (input === undefined ? 'ignore' : 'pipe'), stdoutFd ?? 'pipe', 'pipe'],
      env: env ?? { PATH: process.env.PATH, HOME: '/nonexistent' },
      detached,
    });
    onSpawn?.(child);
    const out = [];
    const err = [];
    const hash = createHash('sha256');
    let outBytes = 0;
    let paused = false;
    child.stdout?.on('data', (d) => {
      outBytes += d.length;
      if (hashStdout) hash.update(d);
      else out.push(d);
      if (pauseStdout && !paused) {
        paused = true;
        child.stdout.pause();
        setTimeout(() => child.stdout.resume(), pauseStdout);
      }
    });
    child.stderr.on('data', (d) => err.push(d));
    let peak = 0;
    const sampler = setInterval(() => {
      const kb = peakRss(child.pid);
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
    if (child.stdin) {
      child.stdin.on('error', () => {});
      if (holdStdin) child.once('exit', () => child.stdin.end());
      else if (input && typeof input.pipe === 'function') input.pipe(child.stdin);
      else child.stdin.end(input);
    }
  });
}

const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** The ECHO flag of a terminal, from stty; undefined when it cannot be read. */
function echoOf(tty) {
  try {
    const words = execFileSync('stty', ['-a', '-F', tty]).toString().split(/[\s;]+/);
    return words.includes('echo') ? true : words.includes('-echo') ? false : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Run rexec on a fresh pseudo-terminal, with script(1) from util-linux (bsdutils,
 * essential on Debian): rexec runs in a shell on the terminal, which afterwards
 * prints rexec's exit status and the terminal's modes.  When `Password:` shows,
 * types `answer` + Enter, or sends `signal` to rexec.  Resolves { output, exit,
 * prompted, echoWhilePrompting, echoAfter } -- output is what the terminal showed
 * while rexec ran.
 */
export function runOnPty({ args, env, answer, signal, timeout = 20000 }) {
  const argv = [NODE, REXEC, ...args].map(shq).join(' ');
  const inner = `${argv} & pid=$!; echo "[pid=$pid]"; wait $pid; echo "[rc=$?]"; stty -a`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', inner, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: env ?? { PATH: process.env.PATH, HOME: '/nonexistent' },
    });
    let out = '';
    let prompted = false;
    let echoWhilePrompting;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rexec on a pty timed out; terminal showed: ${JSON.stringify(out)}`));
    }, timeout);
    child.stdout?.on('data', (d) => {
      out += d.toString('latin1');
      if (prompted || !out.includes('Password:')) return;
      const pid = Number(/\[pid=(\d+)\]/.exec(out)?.[1]);
      if (!pid) return;
      prompted = true;
      // The prompt is written once echo is off; read the mode of rexec's terminal.
      let tty;
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
      const after = out.slice(rc ? rc.index : out.length);
      const words = after.split(/[\s;]+/);
      resolve({
        output: out.slice(out.indexOf(']') + 1, rc ? rc.index : undefined).replace(/^\r?\n/, ''),
        exit: rc ? Number(rc[1]) : null,
        prompted,
        echoWhilePrompting,
        echoAfter: words.includes('echo') ? true : words.includes('-echo') ? false : undefined,
      });
    });
  });
}
