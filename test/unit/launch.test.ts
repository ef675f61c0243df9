// What systemd handed over (SPEC §1, sd_listen_fds(3)): fds 3... only when the
// LISTEN_* variables name this very process; nothing otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemdFds } from '../../src/launch';

const me = 4242;

test('LISTEN_FDS=n and LISTEN_PID = our pid give fds 3..3+n-1', () => {
  assert.deepEqual(systemdFds({ LISTEN_FDS: '1', LISTEN_PID: String(me) }, me), [3]);
  assert.deepEqual(systemdFds({ LISTEN_FDS: '1', LISTEN_PID: String(me), LISTEN_FDNAMES: 'connection' }, me), [3]);
  assert.deepEqual(systemdFds({ LISTEN_FDS: '2', LISTEN_PID: String(me) }, me), [3, 4]);
});

test('LISTEN_* meant for another process, or malformed, is ignored', () => {
  assert.deepEqual(systemdFds({}, me), []);
  assert.deepEqual(systemdFds({ LISTEN_FDS: '1', LISTEN_PID: '1' }, me), []);
  assert.deepEqual(systemdFds({ LISTEN_FDS: '1', LISTEN_PID: `${me}0` }, me), []);
  assert.deepEqual(systemdFds({ LISTEN_FDS: '1' }, me), []);
  assert.deepEqual(systemdFds({ LISTEN_PID: String(me) }, me), []);
  for (const n of ['0', '-1', 'x', '1.5', '65']) assert.deepEqual(systemdFds({ LISTEN_FDS: n, LISTEN_PID: String(me) }, me), [], n);
});
