// The shadow method's pure parts: the ageing rules (as pam_unix applies them), the
// constant-time comparison, the deny-list format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ageingRefusal, constantTimeEqual } from '../../src/auth/shadow';
import { parseDenyList } from '../../src/auth/policy';
import type { ShadowEntry } from '../../src/sys/passwd';

const entry = (o: Partial<ShadowEntry>): ShadowEntry => ({ hash: 'x', lastChange: 19000, max: 99999, inactive: -1, expire: -1, ...o });

test('ageing: expiry, must-change, expired password, inactivity', () => {
  assert.equal(ageingRefusal(entry({}), 19500), undefined);
  assert.equal(ageingRefusal(entry({ expire: 19500 }), 19499), undefined);
  assert.equal(ageingRefusal(entry({ expire: 19500 }), 19500), 'account expired');
  assert.equal(ageingRefusal(entry({ lastChange: 0 }), 19500), 'password must be changed');
  assert.equal(ageingRefusal(entry({ max: 30 }), 19030), undefined);
  assert.equal(ageingRefusal(entry({ max: 30 }), 19031), 'password expired');
  assert.equal(ageingRefusal(entry({ max: 30, inactive: 5 }), 19035), 'password expired');
  assert.equal(ageingRefusal(entry({ max: 30, inactive: 5 }), 19036), 'account inactive (password expired)');
  assert.equal(ageingRefusal(entry({ max: -1, inactive: 5 }), 30000), undefined);
  assert.equal(ageingRefusal(entry({ lastChange: -1, max: 30 }), 30000), undefined);
});

test('constant-time comparison agrees with ===', () => {
  fc.assert(fc.property(fc.string(), fc.string(), (a, b) => {
    assert.equal(constantTimeEqual(a, b), a === b);
    assert.equal(constantTimeEqual(a, a), true);
  }));
});

test('deny list: names, comments, blanks', () => {
  assert.deepEqual([...parseDenyList('root\n# comment\n  daemon  # trailing\n\n\tbin\n')], ['root', 'daemon', 'bin']);
});
