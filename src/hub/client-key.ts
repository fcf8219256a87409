// Who a request is from, for rate limits: the socket's address, or behind a configured trusted
// proxy the address it forwards (X-Forwarded-For, read right to left past our own proxies).
// IPv6 clients are bucketed by /64: one host usually holds a whole /64, and rotating addresses
// inside it must not buy fresh allowances.
import { isIP } from 'node:net'

/** '::ffff:1.2.3.4' is 1.2.3.4; anything else is returned as given. */
function plain (addr: string): string {
  const m = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(addr)
  return m !== null ? m[1] : addr
}

/** The first four groups of an IPv6 address, expanded. */
function prefix64 (addr: string): string {
  const [head, tail = ''] = addr.toLowerCase().split('%')[0].split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === '' ? [] : tail.split(':')
  const groups = addr.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  return groups.slice(0, 4).map(g => g.replace(/^0+(?=.)/, '')).join(':') + '::/64'
}

/** The bucket key of an address: IPv4 as is, IPv6 its /64. */
export function addressKey (addr: string): string {
  const a = plain(addr)
  return isIP(a) === 6 ? prefix64(a) : a
}

export class ClientKeys {
  private readonly proxies: Set<string>
  constructor (trustedProxies: readonly string[] = []) {
    this.proxies = new Set(trustedProxies.map(p => plain(p.trim())).filter(p => p !== ''))
  }

  /** The key for a request from `remote` carrying `forwarded` (the X-Forwarded-For header). */
  keyOf (remote: string | undefined, forwarded: string | string[] | undefined): string {
    let addr = plain(remote ?? 'unknown')
    if (this.proxies.has(addr) && forwarded !== undefined) {
      const hops = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded).split(',').map(s => plain(s.trim()))
      // Right to left: the last hop our proxy added is the one it saw; hops further left are
      // whatever the client claimed, trusted only while they are our proxies too.
      for (let i = hops.length - 1; i >= 0; i--) {
        if (isIP(hops[i]) === 0) break
        addr = hops[i]
        if (!this.proxies.has(addr)) break
      }
    }
    return addressKey(addr)
  }
}
