// The listener's penalty table (src/listen/source-limits.ts) against a plain model
// of sshd's PerSourcePenalties: any sequence of penalties and checks, with time
// passing, gives the same answers as the model's scan of every entry, whatever the
// table's heap does underneath (stale entries, rebuilds, evictions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SourceLimits, type PenaltyEvent, type Source } from '../../src/listen/source-limits';
import { parseOptions } from '../../src/options';

const SECONDS: Record<PenaltyEvent, number> = { authfail: 5, noauth: 1, 'grace-exceeded': 10 };
const MIN = 15;
const MAX = 600;

/** The model: expiry and enforcement per source, every check a scan of them all. */
class Model {
  readonly entries = new Map<string, { expiry: number; active: boolean }>();
  constructor(private readonly maxSources: number) {}

  penalise(block: string, event: PenaltyEvent, now: number): void {
    for (const [b, e] of this.entries) if (e.expiry < now) this.entries.delete(b);
    const secs = SECONDS[event];
    const e = this.entries.get(block);
    if (!e) {
      this.entries.set(block, { expiry: now + secs, active: secs > MIN });
      while (this.entries.size > this.maxSources) {
        let soonest: string | undefined;
        let at = Infinity;
        for (const [b, x] of this.entries) if (x.expiry < at) [at, soonest] = [x.expiry, b];
        this.entries.delete(soonest!);
      }
      return;
    }
    e.expiry = Math.min(e.expiry + secs, now + MAX);
    if (e.expiry - now > MIN) e.active = true;
  }

  refused(block: string, now: number): boolean {
    const e = this.entries.get(block);
    return e !== undefined && e.expiry >= now && e.active;
  }
}

const source = (i: number): Source => ({ family: 4, block: `192.0.2.${i}/32`, exempt: false });

test('penalties: any sequence of events and checks agrees with a scan of every entry', () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('penalise' as const), src: fc.integer({ min: 0, max: 7 }), event: fc.constantFrom<PenaltyEvent>('authfail', 'noauth', 'grace-exceeded') }),
    fc.record({ kind: fc.constant('check' as const), src: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('wait' as const), seconds: fc.integer({ min: 0, max: 40 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), fc.array(step, { maxLength: 300 }), (maxSources, steps) => {
      let now = 1000;
      const options = parseOptions(['--per-source-penalties', `max-sources:${maxSources}`, '--per-source-max-startups', 'none', '--max-startups', '65536']).sourceLimits;
      const limits = new SourceLimits(options, () => now, () => 0);
      const model = new Model(maxSources);
      for (const s of steps) {
        if (s.kind === 'wait') now += s.seconds;
        else if (s.kind === 'penalise') {
          limits.penalise(source(s.src), s.event);
          model.penalise(source(s.src).block, s.event, now);
          // Both forget what has run out when a penalty comes: the same entries remain.
          assert.equal(limits.penaltyCount, model.entries.size, `after a penalty for ${s.src} at ${now}`);
        } else {
          assert.equal(limits.refusal(source(s.src)) !== undefined, model.refused(source(s.src).block, now), `source ${s.src} at ${now}`);
        }
      }
    }),
    { numRuns: 2000 },
  );
});

test('overflow:deny-all refuses new sources while the table is full of live penalties, admits them once those have run out', () => {
  let now = 1000;
  const options = parseOptions(['--per-source-penalties', 'max-sources:2,overflow:deny-all', '--per-source-max-startups', 'none', '--max-startups', '65536']).sourceLimits;
  const limits = new SourceLimits(options, () => now, () => 0);
  limits.penalise(source(1), 'noauth');
  limits.penalise(source(2), 'noauth');
  assert.match(limits.refusal(source(3)) ?? '', /the penalty table is full/);
  // Only new connections are judged after this: no penalty comes to sweep the table.
  now += SECONDS.noauth + 1;
  assert.equal(limits.refusal(source(3)), undefined);
});
