// Processes the tests start and watch: their output, their exit, their children.
import { execFileSync, spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { sleep } from './wait';

/** The pid of a child that was started (spawn failures have none). */
export function pidOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error(`${child.spawnfile} did not start`);
  return child.pid;
}

/** Resolves once the child has exited (at once if it has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** The pids of the live children of pid. */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)]).toString().trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}

/** A size in kB from /proc/<pid>/status (VmRSS: resident now, VmHWM: its peak); undefined once the process is gone. */
export function memoryKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A process whose stdout and stderr are collected together. */
export class Watched {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly pid: number;
  private out = '';

  constructor(command: string, args: readonly string[]) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = pidOf(this.child);
    this.child.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr.on('data', (d: Buffer) => (this.out += d.toString()));
  }

  /** What it printed so far, stdout and stderr interleaved. */
  output(): string {
    return this.out;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** True once the output holds text; false if it exits or ms pass first. */
  async waitFor(text: string, ms = 10000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.out.includes(text)) {
      if (!this.running || Date.now() > end) return false;
      await sleep(20);
    }
    return true;
  }

  /** SIGTERM (SIGKILL if it is still there after 5 s), and its exit. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited(this.child);
    clearTimeout(kill);
  }
}

/** Starts command and resolves once its output holds ready; stops it and throws if it never does. */
export async function startWhenReady(command: string, args: readonly string[], ready: string, ms = 10000): Promise<Watched> {
  const p = new Watched(command, args);
  if (!(await p.waitFor(ready, ms))) {
    const how = p.running ? `no "${ready}" within ${ms} ms` : `exited ${p.child.exitCode ?? p.child.signalCode}`;
    await p.stop();
    throw new Error(`${command} ${args.join(' ')}: ${how}: ${p.output()}`);
  }
  return p;
}
