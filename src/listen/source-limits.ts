/**
 * The listener's limits on unauthenticated connections (protocol.md §6), after OpenSSH
 * sshd (sshd_config(5), srclimit.c):
 *
 *   --max-startups start:rate:full       MaxStartups: from `start` unauthenticated
 *                                        connections, drop new ones with probability
 *                                        rate%, rising linearly to all at `full`
 *   --per-source-max-startups n          PerSourceMaxStartups: one source holds at
 *                                        most n of them
 *   --per-source-net-block-size v4:v6    PerSourceNetBlockSize: which addresses are
 *                                        one source
 *   --per-source-penalties ...           PerSourcePenalties: a source whose login was
 *                                        refused, that sent no complete request, or
 *                                        that held on until the deadline, accrues
 *                                        seconds of penalty; once they add up to more
 *                                        than `min` it is refused until they run out
 *                                        (never more than `max` ahead)
 *   --per-source-penalty-exempt-list     PerSourcePenaltyExemptList: none of this
 *
 * "Unauthenticated" is a connection from accept until its worker says how the login
 * ended.  Memory is bounded: the per-source counts by --max-connections, the
 * penalty table by max-sources per address family (then the soonest-to-expire
 * entry is forgotten, or with overflow:deny-all every new source is refused).
 * Pure: time and chance are passed in, for the tests.
 */
import { BlockList } from 'node:net';
import type { PenaltyOptions, SourceLimitOptions } from '../options';
import { AF_INET, AF_INET6, type SockAddr } from '../sys/socket';

export type PenaltyEvent = 'authfail' | 'noauth' | 'grace-exceeded';

const REASONS: Record<PenaltyEvent, string> = {
  authfail: 'failed authentication',
  noauth: 'no complete request',
  'grace-exceeded': 'held the connection until the deadline',
};
const SECONDS: Record<PenaltyEvent, keyof PenaltyOptions> = { authfail: 'authfail', noauth: 'noauth', 'grace-exceeded': 'graceExceeded' };

/** Where a connection comes from, as the limits see it: an address masked to its net block. */
export interface Source {
  readonly family: 4 | 6;
  /** The masked address and prefix length, e.g. "192.0.2.0/24" or "2001:db8::/64". */
  readonly block: string;
  readonly exempt: boolean;
}

interface Penalty {
  /** When it runs out, in seconds (the clock passed in); change it only with PenaltyTable.put. */
  expiry: number;
  active: boolean;
  reason: string;
}

/**
 * The penalties of one address family: by source, and by expiry in a binary heap
 * (entries made stale by an extension are skipped when they surface, and the heap
 * is rebuilt when they outnumber the live ones), so that expiring and evicting cost
 * log(n), not a scan of up to max-sources entries on every penalty.
 */
class PenaltyTable {
  private readonly bySource = new Map<string, Penalty>();
  private heap: { readonly expiry: number; readonly block: string }[] = [];

  get size(): number {
    return this.bySource.size;
  }

  get(block: string): Penalty | undefined {
    return this.bySource.get(block);
  }

  /** A new penalty, or a changed expiry of one already here. */
  put(block: string, penalty: Penalty): void {
    this.bySource.set(block, penalty);
    this.push({ expiry: penalty.expiry, block });
    if (this.heap.length > 2 * this.bySource.size + 64) this.rebuild();
  }

  /** Forget the penalties that have run out by `now`. */
  expire(now: number): void {
    while (this.heap.length > 0 && (this.stale(this.heap[0]!) || this.heap[0]!.expiry < now)) this.forgetTop();
  }

  /** Forget the live penalty that runs out soonest. */
  forgetSoonest(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      const live = !this.stale(top);
      this.forgetTop();
      if (live) return;
    }
  }

  private stale(e: { expiry: number; block: string }): boolean {
    return this.bySource.get(e.block)?.expiry !== e.expiry;
  }

  private forgetTop(): void {
    const top = this.pop()!;
    if (!this.stale(top)) this.bySource.delete(top.block);
  }

  private rebuild(): void {
    this.heap = [];
    for (const [block, p] of this.bySource) this.push({ expiry: p.expiry, block });
  }

  private push(e: { expiry: number; block: string }): void {
    const h = this.heap;
    h.push(e);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.expiry <= h[i]!.expiry) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  private pop(): { expiry: number; block: string } | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.expiry < h[m]!.expiry) m = l;
        if (r < h.length && h[r]!.expiry < h[m]!.expiry) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}

export type PenaltyChange = { readonly kind: 'new' | 'activated' | 'extended'; readonly seconds: number; readonly active: boolean } | undefined;

export class SourceLimits {
  private readonly unauthenticated = new Map<string, number>();
  private total = 0;
  private readonly tables: Record<4 | 6, PenaltyTable> = { 4: new PenaltyTable(), 6: new PenaltyTable() };
  private readonly exemptList = new BlockList();

  constructor(
    private readonly o: SourceLimitOptions,
    /** Seconds on a monotonic clock. */
    private readonly now: () => number = () => performance.now() / 1000,
    /** A number in [0, 1). */
    private readonly random: () => number = Math.random,
  ) {
    for (const entry of o.exempt) {
      const [addr, bits] = entry.split('/', 2) as [string, string | undefined];
      const type = addr.includes(':') ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.exemptList.addAddress(addr, type);
      else this.exemptList.addSubnet(addr, Number(bits), type);
    }
  }

  /** The source a peer address belongs to (an IPv4-mapped IPv6 address is IPv4). */
  sourceOf(peer: SockAddr): Source {
    const bytes = addressBytes(peer);
    const family = bytes.length === 4 ? 4 : 6;
    const bits = family === 4 ? this.o.netBlockSize.v4 : this.o.netBlockSize.v6;
    const masked = Buffer.from(bytes);
    for (let i = 0; i < masked.length; i++) {
      const keep = Math.max(0, Math.min(8, bits - 8 * i));
      masked[i]! &= (0xff << (8 - keep)) & 0xff;
    }
    const exempt = this.exemptList.check(peer.address, family === 4 ? 'ipv4' : 'ipv6');
    return { family, block: `${formatAddress(masked)}/${bits}`, exempt };
  }

  /** Why a new connection from `source` is refused, or undefined when it is admitted. */
  refusal(source: Source): string | undefined {
    if (source.exempt) return undefined;
    const p = this.o.penalties;
    if (p) {
      const now = this.now();
      const table = this.tables[source.family];
      table.expire(now); // a full table of spent penalties is not full (overflow:deny-all)
      const penalty = table.get(source.block);
      if (penalty && penalty.expiry >= now && penalty.active) return `penalty: ${penalty.reason}, ${Math.ceil(penalty.expiry - now)} s left (--per-source-penalties)`;
      if (!penalty && p.overflow === 'deny-all' && table.size >= p.maxSources) return `the penalty table is full (--per-source-penalties overflow:deny-all)`;
    }
    const mine = this.unauthenticated.get(source.block) ?? 0;
    if (mine >= this.o.perSourceMaxStartups) return `${mine} unauthenticated connections from ${source.block} already (--per-source-max-startups)`;
    const { start, rate, full } = this.o.maxStartups;
    if (this.total >= full) return `${this.total} unauthenticated connections already (--max-startups)`;
    if (this.total >= start) {
      const percent = rate + ((100 - rate) * (this.total - start)) / Math.max(1, full - start);
      if (this.random() * 100 < percent) return `random early drop at ${this.total} unauthenticated connections (--max-startups)`;
    }
    return undefined;
  }

  /** A connection from `source` was admitted: it counts until finished(). */
  started(source: Source): void {
    this.total++;
    this.unauthenticated.set(source.block, (this.unauthenticated.get(source.block) ?? 0) + 1);
  }

  /** The connection's login ended (or it never got that far). */
  finished(source: Source): void {
    this.total--;
    const n = (this.unauthenticated.get(source.block) ?? 1) - 1;
    if (n > 0) this.unauthenticated.set(source.block, n);
    else this.unauthenticated.delete(source.block);
  }

  /**
   * Add `event`'s seconds to the source's penalty, as sshd does: a new penalty
   * runs from now, an existing one is extended, never beyond now + max, and it is
   * enforced once more than `min` is left.  Says what changed, for the log.
   */
  penalise(source: Source, event: PenaltyEvent): PenaltyChange {
    const p = this.o.penalties;
    if (!p || source.exempt) return undefined;
    const secs = p[SECONDS[event]] as number;
    if (secs <= 0) return undefined;
    const now = this.now();
    const table = this.tables[source.family];
    table.expire(now);
    const reason = REASONS[event];
    const existing = table.get(source.block);
    if (!existing) {
      if (table.size >= p.maxSources && p.overflow === 'deny-all') return undefined;
      const penalty: Penalty = { expiry: now + Math.min(secs, p.max), active: secs > p.min, reason };
      table.put(source.block, penalty);
      // Permissive overflow: forget the penalties that would run out soonest.
      while (table.size > p.maxSources) table.forgetSoonest();
      return { kind: 'new', seconds: penalty.expiry - now, active: penalty.active };
    }
    existing.expiry = Math.min(existing.expiry + secs, now + p.max);
    existing.reason = reason;
    table.put(source.block, existing);
    if (!existing.active && existing.expiry - now > p.min) {
      existing.active = true;
      return { kind: 'activated', seconds: existing.expiry - now, active: true };
    }
    return { kind: 'extended', seconds: existing.expiry - now, active: existing.active };
  }

  /** Entries in the penalty tables (both families). */
  get penaltyCount(): number {
    return this.tables[4].size + this.tables[6].size;
  }

}

/** The address's bytes: 4 for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6. */
function addressBytes(a: SockAddr): Buffer {
  if (a.family === AF_INET) return a.raw.subarray(4, 8);
  if (a.family === AF_INET6) {
    const b = a.raw.subarray(8, 24);
    const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    return mapped ? b.subarray(12, 16) : b;
  }
  throw new Error(`not an IP address (family ${a.family})`);
}

/** Dotted quad, or RFC 5952 text (the longest run of two or more zero groups as "::"). */
export function formatAddress(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i));
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}
