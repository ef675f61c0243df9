// Where the user and password come from, in order: options, environment, ~/.netrc,
// the prompt; and that the password is a Buffer the handshake zeroes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { resolveCredentials, type CredentialSources } from '../../src/client/credentials';
import { credentialBytes, handshake } from '../../src/client/handshake';
import { connectToServer } from '../../src/client/connect';
import { Deadline } from '../../src/client/deadline';
import { Inbound } from '../../src/client/inbound';
import type { NetrcLookup } from '../../src/client/netrc';
import { listenEphemeral } from '../harness/sockets';

/** Credential sources that record what was looked up and asked. */
function sources(over: { netrc?: NetrcLookup; src?: Partial<CredentialSources> } = {}) {
  const asked: string[] = [];
  const looked: [string, string, string | undefined][] = [];
  const src: CredentialSources = {
    host: 'h',
    user: undefined,
    password: undefined,
    env: { HOME: '/home/x' },
    netrc: (path, host, user) => {
      looked.push([path, host, user]);
      return over.netrc ?? { login: undefined, password: undefined };
    },
    ask: async (prompt) => {
      asked.push(prompt);
      return Buffer.from('typed');
    },
    localUser: () => 'me',
    ...over.src,
  };
  return { asked, looked, src };
}

test('options first: no netrc, no prompt', async () => {
  const { src, asked, looked } = sources({ src: { user: 'u', password: 'p', env: { REXEC_USER: 'eu', REXEC_PASSWORD: 'ep' } } });
  const c = await resolveCredentials(src);
  assert.equal(c.user, 'u');
  assert.ok(Buffer.isBuffer(c.password));
  assert.equal(c.password.toString(), 'p');
  assert.deepEqual([asked, looked], [[], []]);
});

test('then the environment ($REXEC_PASS too, netkit rexec spelling)', async () => {
  let { src } = sources({ src: { env: { REXEC_USER: 'eu', REXEC_PASSWORD: 'ep' } } });
  let c = await resolveCredentials(src);
  assert.deepEqual([c.user, c.password.toString()], ['eu', 'ep']);
  ({ src } = sources({ src: { env: { REXEC_USER: 'eu', REXEC_PASS: 'old' } } }));
  c = await resolveCredentials(src);
  assert.equal(c.password.toString(), 'old');
});

test('then ~/.netrc, looked up for the host and the user already chosen', async () => {
  const { src, looked, asked } = sources({ src: { user: 'u' }, netrc: { login: 'u', password: 'np' } });
  const c = await resolveCredentials(src);
  assert.deepEqual([c.user, c.password.toString()], ['u', 'np']);
  assert.deepEqual(looked, [['/home/x/.netrc', 'h', 'u']]);
  assert.deepEqual(asked, []);
});

test('then the prompt; the user defaults to the local login name', async () => {
  const { src, asked } = sources();
  const c = await resolveCredentials(src);
  assert.deepEqual([c.user, c.password.toString()], ['me', 'typed']);
  assert.deepEqual(asked, ['Password: ']);
});

test('a netrc login without a password still needs the prompt', async () => {
  const { src, asked } = sources({ netrc: { login: 'nl', password: undefined } });
  const c = await resolveCredentials(src);
  assert.equal(c.user, 'nl');
  assert.deepEqual(asked, ['Password: ']);
});

test('NUL bytes cannot be sent', async () => {
  await assert.rejects(resolveCredentials(sources({ src: { user: 'a\0b', password: 'p' } }).src), /NUL/);
  await assert.rejects(resolveCredentials(sources({ src: { user: 'a', password: 'p\0' } }).src), /NUL/);
});

test('the request bytes; the handshake zeroes the password and sends it once', async () => {
  assert.deepEqual(credentialBytes({ user: 'u', password: Buffer.from('pw') }, 'ls -l'), Buffer.from('u\0pw\0ls -l\0'));
  let received = Buffer.alloc(0);
  const server = createServer((s) => {
    s.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      if (received.length === Buffer.byteLength('\0u\0secret\0cmd\0')) s.end('\0');
    });
  });
  const port = await listenEphemeral(server);
  const inbound = new Inbound();
  const deadline = new Deadline(5000, '127.0.0.1');
  const main = await connectToServer('127.0.0.1', port, 0, deadline, inbound);
  const password = Buffer.from('secret');
  const r = await handshake(main, inbound, { user: 'u', password }, 'cmd', { host: '127.0.0.1', noStderr: true, deadline });
  assert.equal(r.status.kind, 'ok');
  assert.deepEqual(received, Buffer.from('\0u\0secret\0cmd\0'));
  assert.deepEqual(password, Buffer.alloc(6), 'the password Buffer is zeroed');
  main.destroy();
  server.close();
});
