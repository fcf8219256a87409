// Device authentication on a real `space hub` process on 127.0.0.1: certificates chained to the
// registered identity, revocation by an identity-signed record, spent challenges.
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { randomBytes } from 'node:crypto'
import { ed25519FromSeed } from '../../src/keys/ed25519.js'
import { b64u } from '../../src/keys/vault-protocol.js'
import { TransportError } from '../../src/sync/transport.js'
import { postRevocation } from '../../src/sync/transport-http.js'
import { SYNC_API } from '../../src/sync/transport-protocol.js'
import { decodeRevocation, encodeRevocation, revokeDevice } from '../../src/sync/devices.js'

const signRevocation = (identity: Parameters<typeof revokeDevice>[0], dev: Uint8Array) => revokeDevice(identity, dev, 0)
import { HubError } from '../../src/hub/errors.js'
import { startHub as startHubInProcess } from '../../src/hub/server.js'
import { startHub, tempDir, type HubProcess } from '../keys/helpers.js'
import { deviceToken, newDevice, post, randomBlocks, registerUser, tokenRequest, transport, type User } from './replication-helpers.js'

const root = tempDir('space-replauth-')
let hub: HubProcess
let alice: User
let mallory: User
before(async () => {
  hub = await startHub(join(root, 'hub'))
  alice = await registerUser(hub.url, 'alice')
  mallory = await registerUser(hub.url, 'mallory')
})
after(async () => {
  await hub?.stop()
  rmSync(root, { recursive: true, force: true })
})

const rejects = async (p: Promise<unknown>, code: string, hubCode?: string): Promise<void> => {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TransportError, String(err))
    assert.equal(err.code, code, err.message)
    if (hubCode !== undefined) assert.equal(err.hubCode, hubCode, err.message)
    return true
  })
}

describe('hub device authentication', () => {
  it('gives a device certified by the user\'s identity a token that the block routes accept', async () => {
    const t = transport(hub.url, alice, newDevice(alice.identity))
    const blocks = randomBlocks(2, 1000)
    assert.equal((await t.missing(blocks.map(b => b.cid))).length, 2)
    await t.close()
    const token = await deviceToken(hub.url, alice, newDevice(alice.identity))
    const ok = await post(hub.url, SYNC_API.missing, { cids: [] }, { authorization: `Bearer ${token}` })
    assert.equal(ok.status, 200)
    const none = await post(hub.url, SYNC_API.missing, { cids: [] })
    assert.equal(none.status, 401)
    assert.equal(((await none.json()) as { error: string }).error, 'unauthorized')
  })

  it('refuses a device certified by another identity, even one the hub knows', async () => {
    const stranger = newDevice(mallory.identity)
    const [b] = randomBlocks(1, 100)
    await rejects(transport(hub.url, alice, stranger).missing([b.cid]), 'ERR_AUTH', 'bad_certificate')
    // Mallory's own device is fine for Mallory, and only for her.
    assert.deepEqual(await transport(hub.url, mallory, stranger).missing([b.cid]), [b.cid])
  })

  it('refuses a certificate for another key than the one that signs, and a bad signature', async () => {
    const a = newDevice(alice.identity)
    const b = newDevice(alice.identity)
    const req = await tokenRequest(hub.url, alice, a)
    const swapped = await post(hub.url, SYNC_API.token, { ...req, certificate: (await tokenRequest(hub.url, alice, b)).certificate })
    assert.equal(swapped.status, 401)
    assert.equal(((await swapped.json()) as { error: string }).error, 'bad_certificate')
    const req2 = await tokenRequest(hub.url, alice, a)
    const sig = Buffer.from(req2.signature as string, 'base64url')
    sig[0] ^= 1
    const forged = await post(hub.url, SYNC_API.token, { ...req2, signature: b64u(sig) })
    assert.equal(forged.status, 401)
    assert.equal(((await forged.json()) as { error: string }).error, 'bad_signature')
  })

  it('spends a challenge on its first answer: a replayed token request is refused', async () => {
    const req = await tokenRequest(hub.url, alice, newDevice(alice.identity))
    assert.equal((await post(hub.url, SYNC_API.token, req)).status, 200)
    const again = await post(hub.url, SYNC_API.token, req)
    assert.equal(again.status, 401)
    assert.equal(((await again.json()) as { error: string }).error, 'bad_challenge')
  })

  it('refuses a revoked device a new token and ends the tokens it holds; the revocation is listed', async () => {
    const lost = newDevice(alice.identity)
    const kept = newDevice(alice.identity)
    const t = transport(hub.url, alice, lost)
    const [b] = randomBlocks(1, 100)
    assert.deepEqual(await t.missing([b.cid]), [b.cid])
    const token = await deviceToken(hub.url, alice, lost)
    // A record signed by another identity revokes nothing of Alice's; one no user holds is refused.
    await postRevocation(hub.url, encodeRevocation(signRevocation(mallory.identity, lost.deviceKey.publicKey)))
    const nobody = encodeRevocation(signRevocation(ed25519FromSeed(randomBytes(32)), lost.deviceKey.publicKey))
    await rejects(postRevocation(hub.url, nobody), 'ERR_NOT_FOUND')
    const tampered = encodeRevocation({ ...signRevocation(alice.identity, kept.deviceKey.publicKey), devicePublicKey: Buffer.from(lost.deviceKey.publicKey) })
    await rejects(postRevocation(hub.url, tampered), 'ERR_HUB', 'bad_revocation')
    assert.equal((await post(hub.url, SYNC_API.missing, { cids: [] }, { authorization: `Bearer ${token}` })).status, 200, 'still valid')

    await postRevocation(hub.url, encodeRevocation(signRevocation(alice.identity, lost.deviceKey.publicKey)))
    assert.equal((await post(hub.url, SYNC_API.missing, { cids: [] }, { authorization: `Bearer ${token}` })).status, 401)
    // The transport's token is gone too; it asks for a new one and is told why not.
    await rejects(t.missing([b.cid]), 'ERR_REVOKED', 'device_revoked')
    const fresh = await post(hub.url, SYNC_API.token, await tokenRequest(hub.url, alice, lost))
    assert.equal(fresh.status, 403)
    assert.match(((await fresh.json()) as { message: string }).message, /revoked/)

    const other = transport(hub.url, alice, kept)
    const records = await other.revocations()
    assert.equal(records.length, 1)
    assert.deepEqual(decodeRevocation(records[0]).devicePublicKey, Buffer.from(lost.deviceKey.publicKey))
    await Promise.all([t.close(), other.close()])
  })

  it('exposes authenticate(req) and isRevoked() for the entry routes; a revocation outlives a restart', async () => {
    const dataDir = join(root, 'inproc')
    const h = await startHubInProcess({ dataDir, host: '127.0.0.1', port: 0 })
    const carol = await registerUser(h.url, 'carol')
    const dev = newDevice(carol.identity)
    try {
      const token = await deviceToken(h.url, carol, dev)
      const s = h.authenticate({ headers: { authorization: `Bearer ${token}` } } as never)
      assert.deepEqual(s.userId, carol.userId)
      assert.deepEqual(s.devicePublicKey, dev.deviceKey.publicKey)
      assert.throws(() => h.authenticate({ headers: {} } as never), (err: unknown) => err instanceof HubError && err.status === 401 && err.code === 'unauthorized')
      assert.equal(h.isRevoked(carol.userId, dev.deviceKey.publicKey), false)
      await postRevocation(h.url, encodeRevocation(signRevocation(carol.identity, dev.deviceKey.publicKey)))
      assert.equal(h.isRevoked(carol.userId, dev.deviceKey.publicKey), true)
      assert.throws(() => h.authenticate({ headers: { authorization: `Bearer ${token}` } } as never), (err: unknown) => err instanceof HubError && err.status === 401)
    } finally {
      await h.close()
    }
    const again = await startHubInProcess({ dataDir, host: '127.0.0.1', port: 0 })
    try {
      assert.equal(again.isRevoked(carol.userId, dev.deviceKey.publicKey), true)
      assert.equal(again.isRevoked(carol.userId, newDevice(carol.identity).deviceKey.publicKey), false)
    } finally {
      await again.close()
    }
  })
})
