// Runs our rexec client (dist/client/rexec.js) as a user would: a real process with
// its own stdin, stdout and stderr, and (optionally) a pseudo-terminal.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, NODE } from './world.mjs';

export const REXEC = join(ROOT, 'dist', 'client', 'rexec.js');
const PTY_RUN = join(ROOT, 'test', 'harness', 'pty-run.py');

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
 *   hashStdout  hash stdout instead of keeping it (big transfers): sha256 hex
 *   pauseStdout ms to stop reading stdout once the first byte came (back-pressure)
 *   detached    start in a new session, without a controlling terminal
 *   onSpawn     (child) => void, called at once
 */
export function runRexec({ args, env, input, stdin, holdStdin = false, hashStdout = false, pauseStdout = 0, detached = false, timeout = 30000, onSpawn } = {}) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [REXEC, ...args], {
      stdio: [stdin ?? (input === undefined ? 'ignore' : 'pipe'), 'pipe', 'pipe'],
      env: env ?? { PATH: process.env.PATH, HOME: '/nonexistent' },
      detached,
    });
    onSpawn?.(child);
    const out = [];
    const err = [];
    const hash = createHash('sha256');
    let outBytes = 0;
    let paused = false;
    child.stdout.on('data', (d) => {
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

/**
 * Run rexec on a fresh pseudo-terminal (test/harness/pty-run.py).  When `Password:`
 * shows, answers `answer` (+ Enter) or sends `signal`.  Returns { output, exit,
 * signal, prompted, echoWhilePrompting, echoAfter }.
 */
export function runOnPty({ args, env, answer, signal, timeout = 20 }) {
  const spec = { argv: [NODE, REXEC, ...args], env: env ?? { PATH: process.env.PATH, HOME: '/nonexistent' }, answer, signal, timeout };
  return JSON.parse(execFileSync('python3', [PTY_RUN, JSON.stringify(spec)], { timeout: (timeout + 5) * 1000 }).toString());
}
