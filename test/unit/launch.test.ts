// Where the connection is (SPEC §1): fd 3 only when systemd's LISTEN_* variables
// name this very process and exactly one fd; fd 0 (inetd, StandardInput=socket) else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionFd } from '../../src/launch';

const me = String(process.pid);

test('systemd native activation: LISTEN_FDS=1 and LISTEN_PID = our pid give fd 3', () => {
  assert.equal(connectionFd({ LISTEN_FDS: '1', LISTEN_PID: me }), 3);
  assert.equal(connectionFd({ LISTEN_FDS: '1', LISTEN_PID: me, LISTEN_FDNAMES: 'connection' }), 3);
});

test('inetd, xinetd, StandardInput=socket: no LISTEN_* gives fd 0', () => {
  assert.equal(connectionFd({}), 0);
});

test('LISTEN_* meant for another process, or not one connection, is ignored', () => {
  assert.equal(connectionFd({ LISTEN_FDS: '1', LISTEN_PID: '1' }), 0);
  assert.equal(connectionFd({ LISTEN_FDS: '1', LISTEN_PID: `${me}0` }), 0);
  assert.equal(connectionFd({ LISTEN_FDS: '1' }), 0);
  assert.equal(connectionFd({ LISTEN_PID: me }), 0);
  // Accept=no would hand over listening sockets, possibly several: not ours to serve.
  assert.equal(connectionFd({ LISTEN_FDS: '2', LISTEN_PID: me }), 0);
  assert.equal(connectionFd({ LISTEN_FDS: '0', LISTEN_PID: me }), 0);
});
