// The stderr listener listens only on the given local address, keeps only a
// connection from the server's address and turns every other one away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StderrListener, sameAddress } from '../../src/client/stderr-listener';
import { closed, dial } from '../harness/sockets';

test('same address: IPv4 and its IPv4-mapped form, any case', () => {
  assert.ok(sameAddress('127.0.0.1', '::ffff:127.0.0.1'));
  assert.ok(sameAddress('::FFFF:10.0.0.1', '10.0.0.1'));
  assert.ok(sameAddress('FE80::1', 'fe80::1'));
  assert.ok(!sameAddress('127.0.0.1', '127.0.0.2'));
  assert.ok(!sameAddress(undefined, '127.0.0.1'));
});

for (const [local, other] of [
  ['127.0.0.1', '127.0.0.2'],
  ['::1', undefined],
] as const) {
  test(`listens on ${local} only, ephemeral port; strays are closed, the server is kept`, async () => {
    const l = await StderrListener.open(local, local);
    assert.equal(l.address, local);
    assert.ok(l.port >= 1024);
    if (other) {
      const stray = await dial(l.port, local, other);
      await closed(stray);
      assert.equal(l.strays, 1);
    }
    const good = await dial(l.port, local, local);
    const accepted = await l.connection();
    assert.equal(accepted.remotePort, good.localPort);
    // Once it has the server's connection, it listens no more.
    await assert.rejects(dial(l.port, local, local), { code: 'ECONNREFUSED' });
    good.destroy();
    accepted.destroy();
  });
}

test('a listener that gets nothing can be closed', async () => {
  const l = await StderrListener.open('127.0.0.1', '127.0.0.1');
  l.close();
  await assert.rejects(dial(l.port, '127.0.0.1'), { code: 'ECONNREFUSED' });
});
