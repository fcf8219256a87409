// The hub's per-client limits: keyed on the forwarded address only behind a configured trusted
// proxy, IPv6 bucketed by /64, registrations capped per client, connections capped. A real hub
// on 127.0.0.1 and raw HTTP.
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { after, describe, it } from 'node:test'
import { ClientKeys, addressKey } from '../../src/hub/client-key.js'
import { startHub, type RunningHub } from '../../src/hub/server.js'
import { tempDir } from '../keys/helpers.js'

const root = tempDir('space-hublimits-')
const hubs: RunningHub[] = []
after(async () => {
  for (const h of hubs) await h.close()
  rmSync(root, { recursive: true, force: true })
})
let n = 0
async function hub (opts: Parameters<typeof startHub>[0] extends infer O ? Partial<O> : never): Promise<RunningHub> {
  const h = await startHub({ dataDir: `${root}/h${n++}`, host: '127.0.0.1', port: 0, ...opts })
  hubs.push(h)
  return h
}
const health = async (h: RunningHub, xff?: string): Promise<number> =>
  (await fetch(`${h.url}/v1/health`, { headers: xff === undefined ? {} : { 'x-forwarded-for': xff } })).status

describe('hub client limits', () => {
  it('buckets IPv6 by /64 and IPv4-mapped addresses as IPv4', () => {
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), addressKey('2001:db8:1:2:ffff:1:2:3'))
    assert.equal(addressKey('2001:db8:1:2::5'), '2001:db8:1:2::/64')
    assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'))
    assert.equal(addressKey('::ffff:10.0.0.1'), '10.0.0.1')
    assert.equal(addressKey('::1'), '0:0:0:0::/64')
  })

  it('believes X-Forwarded-For only from a trusted proxy, read right to left', () => {
    const k = new ClientKeys(['10.0.0.1'])
    assert.equal(k.keyOf('10.0.0.1', '203.0.113.9'), '203.0.113.9')
    assert.equal(k.keyOf('10.0.0.1', '6.6.6.6, 203.0.113.9'), '203.0.113.9', 'what the client claimed left of our proxy is ignored')
    assert.equal(k.keyOf('10.0.0.2', '203.0.113.9'), '10.0.0.2', 'an untrusted peer\'s header is ignored')
    assert.equal(k.keyOf('10.0.0.1', 'garbage'), '10.0.0.1')
  })

  it('behind a trusted proxy each client has its own bucket; without one, the header buys nothing', async () => {
    const limit = { capacity: 3, refillPerSec: 0.001 }
    const proxied = await hub({ trustedProxies: ['127.0.0.1'], requestLimit: limit })
    for (let i = 0; i < 3; i++) assert.equal(await health(proxied, '198.51.100.1'), 200)
    assert.equal(await health(proxied, '198.51.100.1'), 429)
    assert.equal(await health(proxied, '198.51.100.2'), 200, 'another client behind the proxy is not throttled')
    assert.equal(await health(proxied, '2001:db8::1'), 200)
    assert.equal(await health(proxied, '2001:db8::2'), 200)
    assert.equal(await health(proxied, '2001:db8::3'), 200)
    assert.equal(await health(proxied, '2001:db8::4'), 429, 'rotating inside one /64 shares the bucket')

    const direct = await hub({ requestLimit: limit })
    for (let i = 0; i < 3; i++) assert.equal(await health(direct, `198.51.100.${i + 10}`), 200)
    assert.equal(await health(direct, '198.51.100.99'), 429, 'a spoofed X-Forwarded-For does not make a new client')
  })

  it('caps registrations per client', async () => {
    const h = await hub({ registrationLimit: { capacity: 2, refillPerSec: 0.001 } })
    const reg = async (): Promise<number> => (await fetch(`${h.url}/v1/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status
    assert.equal(await reg(), 400)
    assert.equal(await reg(), 400)
    assert.equal(await reg(), 429)
    assert.equal(await health(h), 200, 'other routes are still served')
  })

  it('caps open connections', async () => {
    const h = await hub({ maxConnections: 2 })
    const open = async (): Promise<Socket> => await new Promise((resolve, reject) => { const s = connect(h.port, '127.0.0.1', () => resolve(s)); s.once('error', reject) })
    const held = [await open(), await open()]
    const third = await open()
    const closed = await new Promise<boolean>(resolve => { third.once('close', () => resolve(true)); third.on('error', () => {}); setTimeout(() => resolve(false), 2000) })
    assert.ok(closed, 'the connection over the cap is closed')
    for (const s of held) s.destroy()
  })
})
