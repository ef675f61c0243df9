// The rexec client's command line: HOST[:PORT] forms, options before HOST only,
// COMMAND words joined by single spaces, and clear usage errors (exit 2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { parseCommandLine, type ClientOptions } from '../../src/client/cli';
import { parseTarget } from '../../src/client/target';
import { UsageError } from '../../src/client/errors';
import { NODE, REXEC } from '../harness/paths';

const run = (argv: readonly string[]): ClientOptions => {
  const r = parseCommandLine(argv, 80);
  if (r.kind !== 'run') assert.fail(`expected options to run with, got ${JSON.stringify(r)}`);
  return r.options;
};

test('defaults: port 512, timeout 60 s, both channels, stdin relayed', () => {
  const o = run(['host.example', 'ls']);
  assert.deepEqual({ ...o }, {
    host: 'host.example',
    port: 512,
    command: 'ls',
    user: undefined,
    password: undefined,
    noStdin: false,
    noStderr: false,
    family: 0,
    timeoutMs: 60000,
  });
});

test('everything after HOST is the command, joined by single spaces (rsh)', () => {
  const o = run(['-l', 'bob', 'h', 'ls', '-l', '-p', '--help', '42', 'a  b']);
  assert.equal(o.user, 'bob');
  assert.equal(o.password, undefined);
  assert.equal(o.command, 'ls -l -p --help 42 a  b');
  assert.equal(run(['--', 'h', '-x']).command, '-x');
});

test('every option, short and long', () => {
  const o = run(['-l', '007', '-p', '0123', '-P', '5120', '-n', '-e', '-6', '--timeout', '2.5', 'h', 'c']);
  assert.equal(o.user, '007'); // strings stay strings
  assert.equal(o.password, '0123');
  assert.equal(o.port, 5120);
  assert.equal(o.noStdin, true);
  assert.equal(o.noStderr, true);
  assert.equal(o.family, 6);
  assert.equal(o.timeoutMs, 2500);
  const l = run(['--user', 'u', '--password', 'p', '--port', '7', '--no-stdin', '--no-stderr', '--ipv4', '--timeout', '0', 'h', 'c']);
  assert.deepEqual([l.user, l.password, l.port, l.noStdin, l.noStderr, l.family, l.timeoutMs], ['u', 'p', 7, true, true, 4, 0]);
});

test('HOST forms: name, name:port, IPv4:port, bare IPv6, [IPv6]:port', () => {
  assert.deepEqual(parseTarget('example.org'), { host: 'example.org', port: undefined });
  assert.deepEqual(parseTarget('example.org:5120'), { host: 'example.org', port: 5120 });
  assert.deepEqual(parseTarget('127.0.0.1:1'), { host: '127.0.0.1', port: 1 });
  assert.deepEqual(parseTarget('::1'), { host: '::1', port: undefined });
  assert.deepEqual(parseTarget('fe80::1:512'), { host: 'fe80::1:512', port: undefined });
  assert.deepEqual(parseTarget('[::1]:5120'), { host: '::1', port: 5120 });
  assert.deepEqual(parseTarget('[::1]'), { host: '::1', port: undefined });
  assert.equal(run(['[::1]:99', 'c']).port, 99);
  assert.equal(run(['-P', '99', '[::1]:99', 'c']).port, 99); // the same port twice is fine
});

test('bad command lines are UsageErrors', () => {
  const bad = [
    [],
    ['host'],
    ['--bogus', 'h', 'c'],
    ['-p'],
    ['-4', '-6', 'h', 'c'],
    ['h:0', 'c'],
    ['h:65536', 'c'],
    ['h:x', 'c'],
    [':512', 'c'],
    ['[127.0.0.1]:5', 'c'],
    ['[::1]:', 'c'],
    ['1:2:3', 'c'],
    ['-P', 'exec', 'h', 'c'],
    ['-P', '5', 'h:6', 'c'],
    ['--timeout', '-1', 'h', 'c'],
    ['--timeout', 'soon', 'h', 'c'],
    ['-46', 'h', 'c'],
  ];
  for (const argv of bad) assert.throws(() => parseCommandLine(argv, 80), UsageError, JSON.stringify(argv));
});

test('the executable: --help names the risks, --version, usage errors exit 2', () => {
  const help = spawnSync(NODE, [REXEC, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: rexec \[options\] HOST\[:PORT\] COMMAND\.\.\./);
  for (const opt of ['-l, --user', '-p, --password', '-P, --port', '-n, --no-stdin', '-e, --no-stderr', '-4, --ipv4', '-6, --ipv6', '--timeout']) {
    assert.ok(help.stdout.includes(opt), opt);
  }
  assert.match(help.stdout, /discouraged: visible to others in ps/);
  assert.match(help.stdout, /carries no remote exit status/);
  const version = spawnSync(NODE, [REXEC, '--version'], { encoding: 'utf8' });
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^rexec \d+\.\d+\.\d+\n$/);
  const usage = spawnSync(NODE, [REXEC, '--bogus', 'h', 'c'], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.equal(usage.stdout, '');
  assert.match(usage.stderr, /^rexec: Unknown argument: bogus\nTry 'rexec --help'/);
});
