// The listener's handoff message: what goes in comes out, and nothing else decodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeHandoff, decodeHandoff, HANDOFF_MAX, type Handoff } from '../../src/listen/handoff';

test('round trip', () => {
  const h: Handoff = { hasStderr: true, remainingMs: 59000, user: Buffer.from('alice'), password: Buffer.from('pw\0x'), command: Buffer.from('ls -l') };
  assert.deepEqual(decodeHandoff(encodeHandoff(h)), h);
});

test('property: any handoff round-trips; any truncation or corruption of the header is rejected', () => {
  const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
  fc.assert(
    fc.property(fc.boolean(), fc.integer({ min: 0, max: 0xffffffff }), bytes(64), bytes(64), bytes(300), fc.nat(), (hasStderr, remainingMs, user, password, command, cut) => {
      const h: Handoff = { hasStderr, remainingMs, user, password, command };
      const m = encodeHandoff(h);
      assert.ok(m.length <= HANDOFF_MAX);
      assert.deepEqual(decodeHandoff(m), h);
      const short = m.subarray(0, cut % m.length);
      assert.equal(decodeHandoff(short), undefined);
      assert.equal(decodeHandoff(Buffer.concat([m, Buffer.from([0])])), undefined);
      const bad = Buffer.from(m);
      bad.writeUInt8(bad.readUInt8(0) ^ 0xff, 0);
      assert.equal(decodeHandoff(bad), undefined);
    }),
    { numRuns: 1000 },
  );
});
