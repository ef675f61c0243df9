// Option parsing at the edge (SPEC §6): defaults, every option, and clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseOptions, parseListen, commandLimit, workerArgv, USAGE } from '../../src/options';
import { VERSION } from '../../src/version';
import { NODE, REXECD, ROOT } from '../harness/paths';

test('defaults', () => {
  const o = parseOptions([]);
  assert.equal(o.auth, 'auto');
  assert.equal(o.pamService, 'rexec');
  assert.equal(o.allowRoot, false);
  assert.equal(o.allowEmptyPassword, false);
  assert.equal(o.denyFile, undefined);
  assert.equal(o.timeout, 60);
  assert.equal(o.failDelay, 2);
  assert.equal(o.maxName, 16);
  assert.equal(o.maxPassword, 16);
  assert.equal(o.logConnections, false);
  assert.equal(o.logCommands, false);
  assert.deepEqual(o.listen, []);
  assert.equal(o.maxConnections, 64);
});

test('every option', () => {
  const o = parseOptions([
    '--auth', 'shadow', '--pam-service', 'rexecd', '-i', '--allow-empty-password', '--deny-file', '/etc/ftpusers',
    '--timeout', '2.5', '--fail-delay', '0', '--max-name', '32', '--max-password', '128', '-l', '--log-commands',
    '--listen', '5120', '--listen', '[::1]:5121', '--max-connections', '8',
  ]);
  assert.equal(o.auth, 'shadow');
  assert.equal(o.pamService, 'rexecd');
  assert.equal(o.allowRoot, true);
  assert.equal(o.allowEmptyPassword, true);
  assert.equal(o.denyFile, '/etc/ftpusers');
  assert.equal(o.timeout, 2.5);
  assert.equal(o.failDelay, 0);
  assert.equal(o.maxName, 32);
  assert.equal(o.maxPassword, 128);
  assert.equal(o.logConnections, true);
  assert.equal(o.logCommands, true);
  assert.deepEqual(o.listen, [{ host: '127.0.0.1', port: 5120 }, { host: '::1', port: 5121 }]);
  assert.equal(o.maxConnections, 8);
  assert.equal(parseOptions(['--allow-root']).allowRoot, true);
  assert.equal(parseOptions(['--auth=pam']).auth, 'pam');
});

test('bad values say what is wrong', () => {
  const bad: [string[], RegExp][] = [
    [['--auth', 'kerberos'], /--auth: "kerberos" is not pam or shadow/],
    [['--timeout', '0'], /--timeout: 0 is not between 0.1 and 86400 seconds/],
    [['--timeout=-1'], /--timeout: "-1" is not a number of seconds/],
    [['--fail-delay', 'x'], /--fail-delay: "x" is not a number of seconds/],
    [['--max-name', '0'], /--max-name: 0 is not between 1 and 4096/],
    [['--max-password', '1.5'], /--max-password: "1.5" is not a whole number/],
    [['--listen', 'localhost:99999'], /--listen: "localhost:99999" is not \[HOST:\]PORT/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['extra'], /Unexpected argument 'extra'/],
    [['--timeout'], /--timeout/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseOptions(argv), re, argv.join(' '));
});

test('--listen forms', () => {
  assert.deepEqual(parseListen('512'), { host: '127.0.0.1', port: 512 });
  assert.deepEqual(parseListen('0.0.0.0:512'), { host: '0.0.0.0', port: 512 });
  assert.deepEqual(parseListen('[::]:512'), { host: '::', port: 512 });
  assert.deepEqual(parseListen('localhost:5120'), { host: 'localhost', port: 5120 });
  assert.throws(() => parseListen('::1:512'));
  assert.throws(() => parseListen('0'));
});

test('a pool worker gets the options that shape a connection, and none of the listener\'s', () => {
  const o = parseOptions(['--listen', '5120', '-l', '--max-connections', '3', '--timeout', '5', '--auth', 'shadow', '-i', '--deny-file', '/etc/ftpusers', '--log-commands', '--spare', '2']);
  const argv = workerArgv(o);
  const w = parseOptions(argv);
  assert.equal(w.poolWorker, true);
  for (const k of ['auth', 'pamService', 'allowRoot', 'allowEmptyPassword', 'denyFile', 'timeout', 'failDelay', 'maxName', 'maxPassword', 'logCommands'] as const) assert.deepEqual(w[k], o[k], k);
  // -l: the listener logs each connection itself, once.
  assert.equal(w.logConnections, false);
  assert.deepEqual(w.listen, []);
  assert.ok(!argv.some((a) => /listen|max-connections|spare/.test(a)), argv.join(' '));
});

test('the command limit is MAX_ARG_STRLEN less its NUL, or less when ARG_MAX is small', () => {
  assert.equal(commandLimit(2097152), 131071);
  assert.equal(commandLimit(65536), 65536 - 16384 - 1);
});

test('--help lists every option with its default; --version prints the version', () => {
  for (const opt of ['--auth', '--pam-service', '--allow-root', '--allow-empty-password', '--deny-file', '--timeout', '--fail-delay', '--max-name', '--max-password', '-l', '--log-commands', '--listen', '--max-connections', '--idle-exit', '--spare', '--help', '--version']) {
    assert.ok(USAGE.includes(opt), opt);
  }
  const help = spawnSync(NODE, [REXECD, '--help'], { env: {} });
  assert.equal(help.status, 0);
  assert.equal(help.stdout.toString(), USAGE);
  const version = spawnSync(NODE, [REXECD, '--version'], { env: {} });
  assert.equal(version.status, 0);
  assert.match(version.stdout.toString(), /^rexecd \d+\.\d+\.\d+\ncode cache: (used|ignored: .+)\n$/);
});

test('the version is package.json\'s', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: unknown };
  assert.equal(VERSION, pkg.version);
});
