// Token buckets for passphrase guesses, kept in the hub database so a restart does not hand an
// attacker a fresh allowance. A guess takes a token before the (slow) check runs, so parallel
// requests cannot outrun the count; a correct guess gives its token back.
import type { BucketRow, HubDb } from './db.js'

export interface BucketPolicy { capacity: number, refillPerSec: number }

export type TakeResult = { ok: true } | { ok: false, retryAfter: number }

export class RateLimiter {
  constructor (private readonly db: Pick<HubDb, 'bucket' | 'setBucket'>, private readonly now: () => number = Date.now) {}

  private level (key: string, policy: BucketPolicy, t: number): number {
    const b = this.db.bucket(key)
    if (b === undefined) return policy.capacity
    return Math.min(policy.capacity, b.tokens + (t - b.updatedAt) / 1000 * policy.refillPerSec)
  }

  /** Takes one token from every bucket, or none if any is empty (then: seconds to wait). */
  take (buckets: Array<[string, BucketPolicy]>): TakeResult {
    const t = this.now()
    const levels = buckets.map(([key, policy]) => this.level(key, policy, t))
    const short = buckets
      .map(([, policy], i) => levels[i] >= 1 ? 0 : (1 - levels[i]) / policy.refillPerSec)
      .reduce((a, b) => Math.max(a, b), 0)
    if (short > 0) return { ok: false, retryAfter: Math.max(1, Math.ceil(short)) }
    buckets.forEach(([key], i) => this.db.setBucket(key, { tokens: levels[i] - 1, updatedAt: t }))
    return { ok: true }
  }

  give (buckets: Array<[string, BucketPolicy]>): void {
    const t = this.now()
    for (const [key, policy] of buckets) this.db.setBucket(key, { tokens: Math.min(policy.capacity, this.level(key, policy, t) + 1), updatedAt: t })
  }
}

/** For limits that only need to outlast a burst, not a restart. */
export class MemoryBuckets implements Pick<HubDb, 'bucket' | 'setBucket'> {
  private readonly map = new Map<string, BucketRow>()
  bucket (key: string): BucketRow | undefined { return this.map.get(key) }
  setBucket (key: string, b: BucketRow): void {
    if (this.map.size > 100_000) this.map.clear() // bounded memory beats perfect accounting here
    this.map.set(key, b)
  }
}
