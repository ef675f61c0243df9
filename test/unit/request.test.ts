// The pure request reader: limits, diagnostics, and the promise never to claim a
// byte past the command's NUL, checked by example and by property.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fieldReader, parseStderrPort, RequestReader, DEFAULT_LIMITS, MAX_ARG_STRLEN, type FieldLimits, type FieldName, type Request, type Step } from '../../src/protocol/request';
import { diagnosticBytes, Diagnostic, type DiagnosticText } from '../../src/protocol/diagnostics';

const b = (s: string) => Buffer.from(s, 'latin1');
const FIELD_ORDER: readonly FieldName[] = ['port', 'user', 'password', 'command'];

/** What a RequestReader makes of a whole buffer. */
type Parse =
  | { readonly kind: 'more' }
  | { readonly kind: 'request'; readonly request: Request; readonly consumed: number }
  | { readonly kind: 'refuse'; readonly diagnostic: DiagnosticText; readonly consumed: number };

/** The whole of `bytes` offered to a RequestReader at once, the stderr channel taken as dialled. */
function parseRequest(bytes: Buffer, limits: FieldLimits = DEFAULT_LIMITS): Parse {
  const reader = new RequestReader(limits);
  let consumed = 0;
  for (;;) {
    const step = reader.offer(bytes.subarray(consumed));
    consumed += step.consumed;
    const e = step.event;
    if (e.kind === 'connect-back') {
      reader.connected();
      continue;
    }
    if (e.kind === 'more') return { kind: 'more' };
    if (e.kind === 'refuse') return { kind: 'refuse', diagnostic: e.diagnostic, consumed };
    return { kind: 'request', request: e.request, consumed };
  }
}
const req = (...fields: string[]) => Buffer.concat(fields.map((f) => Buffer.concat([b(f), Buffer.from([0])])));

type Refusal<T extends { kind: string }> = Extract<T, { kind: 'refuse' }>;

/** The parse's request, failing the test if it is anything else. */
function parsed(r: Parse): Request & { consumed: number } {
  if (r.kind !== 'request') assert.fail(`expected a request, got ${JSON.stringify(r)}`);
  return { ...r.request, consumed: r.consumed };
}

/** The refusal, failing the test if it is anything else. */
function refusal(r: Parse): Refusal<Parse>;
function refusal(r: Step): Refusal<Step>;
function refusal(r: Parse | Step): Refusal<Parse | Step> {
  if (r.kind !== 'refuse') assert.fail(`expected a refusal, got ${JSON.stringify(r)}`);
  return r;
}

test('a complete request is parsed and consumption stops at the command NUL', () => {
  const bytes = Buffer.concat([req('2000', 'alice', 'secret', 'ls -l'), b('stdin data\0more')]);
  const r = parsed(parseRequest(bytes));
  assert.equal(r.stderrPort, 2000);
  assert.equal(r.user.toString(), 'alice');
  assert.equal(r.password.toString(), 'secret');
  assert.equal(r.command.toString(), 'ls -l');
  assert.equal(r.consumed, req('2000', 'alice', 'secret', 'ls -l').length);
});

test('stderr port: empty and zero mean no channel; rules for the rest', () => {
  assert.deepEqual(parseStderrPort(b('')), { kind: 'none' });
  assert.deepEqual(parseStderrPort(b('0')), { kind: 'none' });
  assert.deepEqual(parseStderrPort(b('00000')), { kind: 'none' });
  assert.deepEqual(parseStderrPort(b('1024')), { kind: 'port', port: 1024 });
  assert.deepEqual(parseStderrPort(b('65535')), { kind: 'port', port: 65535 });
  for (const bad of ['1', '1023', '65536', '99999', '123456', '12a', '-1', ' 80', '+2000']) {
    assert.equal(parseStderrPort(b(bad)).kind, 'bad', bad);
  }
});

test('port field: a non-digit or a sixth digit is refused at once, without waiting for the NUL', () => {
  for (const [input, consumed] of [['12a', 3], ['123456', 6], ['x', 1]] as const) {
    const step = refusal(fieldReader('port', DEFAULT_LIMITS).offer(b(input)));
    assert.equal(step.diagnostic, Diagnostic.badStderrPort);
    assert.equal(step.consumed, consumed);
  }
  assert.equal(refusal(parseRequest(req('80', 'u', 'p', 'c'))).diagnostic, Diagnostic.badStderrPort);
});

test('16-byte user name and password pass; the 17th byte is refused at once', () => {
  const n16 = 'abcdefghijklmnop';
  assert.equal(parsed(parseRequest(req('', n16, n16, 'true'))).user.length, 16);
  const u = refusal(fieldReader('user', DEFAULT_LIMITS).offer(b(n16 + 'q')));
  assert.deepEqual([u.diagnostic, u.consumed], ['username too long', 17]);
  const p = refusal(fieldReader('password', DEFAULT_LIMITS).offer(b(n16 + 'qrst')));
  assert.deepEqual([p.diagnostic, p.consumed], ['password too long', 17]);
  assert.equal(refusal(parseRequest(req('', 'u', n16 + 'x', 'c'))).diagnostic, 'password too long');
});

test('the command may hold MAX_ARG_STRLEN bytes with its NUL, and not one more', () => {
  const fits = 'x'.repeat(MAX_ARG_STRLEN - 1);
  assert.equal(parseRequest(req('', 'u', 'p', fits)).kind, 'request');
  assert.equal(refusal(parseRequest(req('', 'u', 'p', fits + 'x'))).diagnostic, 'command too long');
});

test('limits are configurable', () => {
  const limits: FieldLimits = { user: 32, password: 64, command: 10 };
  assert.equal(parseRequest(req('', 'u'.repeat(32), 'p'.repeat(64), 'c'.repeat(10)), limits).kind, 'request');
  assert.equal(refusal(parseRequest(req('', 'u'.repeat(33), 'p', 'c'), limits)).diagnostic, 'username too long');
  assert.equal(refusal(parseRequest(req('', 'u', 'p', 'c'.repeat(11)), limits)).diagnostic, 'command too long');
});

test('empty fields are fields (an empty user name is a user name that does not exist)', () => {
  const r = parsed(parseRequest(Buffer.from([0, 0, 0, 0])));
  assert.equal(r.user.length, 0);
  assert.equal(r.consumed, 4);
});

test('diagnostics go out as \\001 text \\n', () => {
  assert.deepEqual(diagnosticBytes(Diagnostic.loginIncorrect), b('\x01Login incorrect.\n'));
  assert.deepEqual(diagnosticBytes(Diagnostic.cantConnectStderr), b("\x01Can't connect to stderr port.\n"));
});

const smallLimits: FieldLimits = { user: 16, password: 16, command: 40 };
const byteArb = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x30, 0x31, 0x35, 0x39));

test('property: any bytes give a request, a refusal or "more" — never an exception, never past the NUL', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }).chain((a) => fc.constant(a)), fc.array(byteArb, { maxLength: 200 }), (a, extra) => {
      const bytes = Buffer.concat([Buffer.from(a), Buffer.from(extra)]);
      const r = parseRequest(bytes, smallLimits);
      assert.ok(['more', 'request', 'refuse'].includes(r.kind));
      // The 4th NUL ends the request; nothing after it may be claimed.
      let nuls = 0;
      let end = -1;
      for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0 && ++nuls === 4) { end = i + 1; break; }
      if (r.kind === 'request') assert.equal(r.consumed, end);
      if (r.kind === 'refuse') assert.ok(r.consumed <= bytes.length && (end === -1 || r.consumed <= end));
      if (r.kind === 'more') assert.equal(end, -1);
    }),
    { numRuns: 5000 },
  );
});

test('property: feeding a field in any chunks gives the same result as feeding it whole', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...FIELD_ORDER),
      fc.array(byteArb, { maxLength: 60 }),
      fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 30 }),
      (name, arr, cuts) => {
        const bytes = Buffer.from(arr);
        const whole = fieldReader(name, smallLimits).offer(bytes);
        const reader = fieldReader(name, smallLimits);
        let off = 0;
        let last: Step | undefined;
        let i = 0;
        while (off < bytes.length || last === undefined) {
          const len = Math.min(cuts[i++ % cuts.length]!, bytes.length - off);
          last = reader.offer(bytes.subarray(off, off + len));
          off += last.consumed;
          if (last.kind !== 'more' || len === 0) break;
        }
        assert.equal(last.kind, whole.kind);
        if (whole.kind !== 'more') assert.equal(off, whole.consumed);
        if (whole.kind === 'field' && last.kind === 'field') assert.deepEqual(last.value, whole.value);
        if (whole.kind === 'refuse' && last.kind === 'refuse') assert.equal(last.diagnostic, whole.diagnostic);
      },
    ),
    { numRuns: 3000 },
  );
});

test('property: a well-formed request followed by anything is parsed exactly', () => {
  const field = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a.map((x) => x || 1)));
  fc.assert(
    fc.property(fc.integer({ min: 1024, max: 65535 }), field(16), field(16), field(40), fc.uint8Array({ maxLength: 100 }), (port, u, p, c, tail) => {
      const head = Buffer.concat([Buffer.from(`${port}\0`), u, Buffer.from([0]), p, Buffer.from([0]), c, Buffer.from([0])]);
      const r = parsed(parseRequest(Buffer.concat([head, Buffer.from(tail)]), smallLimits));
      assert.equal(r.consumed, head.length);
      assert.equal(r.stderrPort, port);
      assert.deepEqual([r.user, r.password, r.command], [u, p, c]);
    }),
    { numRuns: 2000 },
  );
});
