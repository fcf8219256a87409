// The vault service end to end: real `space hub` processes on 127.0.0.1, the real CLI on two
// separate config dirs, and raw HTTP where the test plays an attacker.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { openAccount, type Account } from '../../src/keys/account.js'
import { backupToHub } from '../../src/keys/backup.js'
import { loadDriveKey } from '../../src/keys/drive-key.js'
import { ed25519Sign } from '../../src/keys/ed25519.js'
import { deriveIdentity, newDeviceKey } from '../../src/keys/identity.js'
import { entropyToSeed, generateEntropy } from '../../src/keys/mnemonic.js'
import { BOX_HEADER_LEN, decodeBoxHeader, deriveBoxKeys } from '../../src/keys/passbox.js'
import { VaultClient } from '../../src/keys/vault-client.js'
import { API, authMessage, b64u, fromB64u } from '../../src/keys/vault-protocol.js'
import { cli, publicKeyFrom, scanForSecrets, startHub, tempDir, type HubProcess } from '../keys/helpers.js'

const root = tempDir('space-hub-')
const hubs: HubProcess[] = []
after(async () => {
  await Promise.all(hubs.map(async h => await h.stop()))
  rmSync(root, { recursive: true, force: true })
})
let n = 0
const dir = (p = 'c'): string => join(root, `${p}${n++}`)
async function hub (dataDir = dir('hub')): Promise<HubProcess> {
  const h = await startHub(dataDir)
  hubs.push(h)
  return h
}

const PASS = 'a long backup passphrase'
const INSECURE = ['--keystore', 'file', '--insecure-no-passphrase']

async function newUser (h: HubProcess, username: string): Promise<{ dir: string, pk: string }> {
  const d = dir()
  const init = await cli(['init', '--config-dir', d, ...INSECURE])
  assert.equal(init.code, 0, init.stderr)
  const b = await cli(['backup-keys', '--config-dir', d, '--hub', h.url, '--username', username, '--passphrase-stdin'], { input: PASS + '\n' })
  assert.equal(b.code, 0, b.stderr)
  assert.match(b.stdout, new RegExp(`Key backup stored on ${h.url} for "${username}"`))
  return { dir: d, pk: publicKeyFrom(init.stdout) }
}

const recover = async (h: HubProcess, username: string, pass: string, d = dir()): Promise<{ dir: string, r: Awaited<ReturnType<typeof cli>> }> =>
  ({ dir: d, r: await cli(['recover-keys', username, '--hub', h.url, '--config-dir', d, '--passphrase-stdin', ...INSECURE], { input: pass + '\n' }) })

async function post (h: HubProcess, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(h.url + path, { method: path === API.vault ? 'PUT' : 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
}

describe('space hub vault', () => {
  it('round trip: backup on one config dir, recover on an empty one, same identity and drive', async () => {
    const h = await hub()
    const alice = await newUser(h, 'alice')
    const { dir: fresh, r } = await recover(h, 'alice', PASS)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(publicKeyFrom(r.stdout), alice.pk)
    assert.equal(publicKeyFrom((await cli(['whoami', '--config-dir', fresh])).stdout), alice.pk)
    assert.deepEqual((await loadDriveKey(fresh)).key, (await loadDriveKey(alice.dir)).key)
    const t = await cli(['test-passphrase', '--config-dir', fresh, '--passphrase-stdin'], { input: PASS + '\n' })
    assert.equal(t.code, 0, t.stderr)
    assert.match(t.stdout, /passphrase OK/)
    // A second backup from the recovered machine replaces the vault under the same name.
    const again = await cli(['backup-keys', '--config-dir', fresh, '--passphrase-stdin'], { input: 'another passphrase\n' })
    assert.equal(again.code, 0, again.stderr)
    assert.equal((await recover(h, 'alice', 'another passphrase')).r.code, 0)
  })

  it('a wrong passphrase says only "wrong passphrase" and changes nothing', async () => {
    const h = await hub()
    const bob = await newUser(h, 'bob')
    const { dir: d, r } = await recover(h, 'bob', 'not the passphrase')
    assert.equal(r.code, 23)
    assert.equal(r.stderr, 'space recover-keys: wrong passphrase\n')
    assert.equal(existsSync(d) && readdirSync(d).length > 0, false, 'nothing written')
    const t = await cli(['test-passphrase', 'bob', '--hub', h.url, '--config-dir', bob.dir, '--passphrase-stdin'], { input: 'not it either\n' })
    assert.equal(t.code, 23)
    assert.equal(t.stderr, 'space test-passphrase: wrong passphrase\n')
    const unknown = await recover(h, 'nobody', PASS)
    assert.equal(unknown.r.code, 27)
  })

  it('throttles 50 rapid wrong guesses per user and per client, with 429 and Retry-After', async () => {
    const h = await hub()
    const carol = await newUser(h, 'carol')
    const info = await new VaultClient(h.url).lookup('carol')
    const guesses = await Promise.all(Array.from({ length: 50 }, async (_, i) =>
      await post(h, API.vaultFetch, { userId: info.userId, vsk: b64u(Buffer.alloc(32, i)) })))
    const statuses = guesses.map(g => g.status)
    const denied = statuses.filter(s => s === 403).length
    const limited = guesses.filter(g => g.status === 429)
    assert.ok(denied <= 10, `at most 10 guesses were checked, got ${denied}`)
    assert.ok(limited.length >= 40, `throttled ${limited.length} of 50`)
    assert.equal(denied + limited.length, 50)
    for (const g of limited) assert.ok(Number(g.headers.get('retry-after')) >= 1)
    // Throttled means throttled: even the right passphrase waits now.
    const right = await cli(['test-passphrase', 'carol', '--hub', h.url, '--config-dir', carol.dir, '--passphrase-stdin'], { input: PASS + '\n' })
    assert.equal(right.code, 29)
    assert.match(right.stderr, /too many attempts, retry in \d+ s/)

    // Per client: spread over fresh users, the same address is cut off after 20 guesses.
    const others = await Promise.all(['dave', 'erin', 'frank'].map(async u => await new VaultClient(h.url).lookup((await newUser(h, u), u))))
    const spread = []
    for (let i = 0; i < 21; i++) spread.push((await post(h, API.vaultFetch, { userId: others[i % 3].userId, vsk: b64u(Buffer.alloc(32, i)) })).status)
    assert.ok(spread.includes(429), `client limit reached: ${spread.join(',')}`)
    assert.ok(spread.filter(s => s === 403).length <= 10)
  })

  it('keeps no key material on disk that opens without the passphrase, and survives a restart', async () => {
    const dataDir = dir('hub')
    const h1 = await hub(dataDir)
    const gina = await newUser(h1, 'gina')
    const account: Account = await openAccount(gina.dir)
    const info = await new VaultClient(h1.url).lookup('gina')
    const keys = await deriveBoxKeys(PASS, decodeBoxHeader(fromB64u(info.vaultHeader!)!))
    await h1.stop()

    const id = account.identity
    const secrets = {
      entropy: id.entropy, seed: entropyToSeed(id.entropy), identityKey: id.signing.privateKey, shareKey: id.share.privateKey,
      driveKey: id.driveMaster, deviceKey: account.device.privateKey, vk: keys.vk, vsk: keys.vsk, passphrase: Buffer.from(PASS)
    }
    assert.deepEqual(scanForSecrets(dataDir, secrets), [])
    assert.ok(scanForSecrets(dataDir, { publicKey: id.signing.publicKey }).length > 0, 'the scan does see the database')

    const h2 = await hub(dataDir)
    assert.notEqual(h2.url, h1.url)
    const { dir: fresh, r } = await recover(h2, 'gina', PASS)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual((await loadDriveKey(fresh)).key, id.driveMaster)
  })

  it('refuses a tampered vault blob', async () => {
    const h = await hub()
    await newUser(h, 'hank')
    const db = new DatabaseSync(join(h.dataDir, 'hub.sqlite'))
    try {
      const row = db.prepare('SELECT user_id, box FROM vaults').get() as { user_id: Uint8Array, box: Uint8Array }
      const box = Buffer.from(row.box)
      box[BOX_HEADER_LEN + 20] ^= 0x01
      db.prepare('UPDATE vaults SET box = ? WHERE user_id = ?').run(box, row.user_id)
    } finally {
      db.close()
    }
    const { dir: d, r } = await recover(h, 'hank', PASS)
    assert.equal(r.code, 30)
    assert.match(r.stderr, /failed authentication \(tampered or corrupt\); refused/)
    assert.equal(existsSync(join(d, 'identity.json')), false)
  })

  it('refuses replayed and forged challenge signatures, and writes without a token', async () => {
    const h = await hub()
    const entropy = generateEntropy()
    const id = deriveIdentity(entropy)
    const client = new VaultClient(h.url)
    const userId = await client.register('ivan', id.signing)
    const uid = fromB64u(userId)!
    const challenge = async (): Promise<{ challengeId: string, id: Buffer, challenge: Buffer }> => {
      const c = await (await post(h, API.challenge, { userId })).json() as { challengeId: string, challenge: string }
      return { challengeId: c.challengeId, id: fromB64u(c.challengeId)!, challenge: fromB64u(c.challenge)! }
    }

    const c1 = await challenge()
    const sig1 = ed25519Sign(id.signing.privateKey, authMessage(c1.id, uid, c1.challenge))
    const ok = await post(h, API.token, { challengeId: c1.challengeId, signature: b64u(sig1) })
    assert.equal(ok.status, 200)
    const replay = await post(h, API.token, { challengeId: c1.challengeId, signature: b64u(sig1) })
    assert.equal(replay.status, 401)
    assert.equal((await replay.json() as { error: string }).error, 'bad_challenge')

    const c2 = await challenge()
    const stale = await post(h, API.token, { challengeId: c2.challengeId, signature: b64u(sig1) })
    assert.equal(stale.status, 401, 'a signature over another challenge')
    const c3 = await challenge()
    const forged = ed25519Sign(newDeviceKey().privateKey, authMessage(c3.id, uid, c3.challenge))
    const f = await post(h, API.token, { challengeId: c3.challengeId, signature: b64u(forged) })
    assert.equal(f.status, 401)
    assert.equal((await f.json() as { error: string }).error, 'bad_signature')
    const late = await post(h, API.token, { challengeId: c3.challengeId, signature: b64u(ed25519Sign(id.signing.privateKey, authMessage(c3.id, uid, c3.challenge))) })
    assert.equal(late.status, 401, 'a challenge answered wrongly once is spent')

    const box = Buffer.alloc(80, 1)
    box.set([1, 2, 1, 10, 8, 1, 0])
    assert.equal((await post(h, API.vault, { box: b64u(box), vsk: b64u(Buffer.alloc(32)) })).status, 401)
    assert.equal((await post(h, API.vault, { box: b64u(box), vsk: b64u(Buffer.alloc(32)) }, { authorization: `Bearer ${b64u(Buffer.alloc(32, 9))}` })).status, 401)

    // Registration: forged signatures and someone else's name are refused.
    const other = deriveIdentity(generateEntropy())
    await assert.rejects(client.register('ivan', other.signing), (e: Error & { code?: string }) => e.code === 'ERR_USERNAME_TAKEN')
    const ts = Date.now()
    const bad = await post(h, API.users, { username: 'judy', publicKey: b64u(other.signing.publicKey), timestamp: ts, signature: b64u(ed25519Sign(id.signing.privateKey, Buffer.from('x'))) })
    assert.equal(bad.status, 401)
    assert.equal(await client.register('ivan', id.signing), userId, 'registering again with the same key is idempotent')

    // And the legitimate path works end to end through the library.
    const account = { identity: id } as unknown as Account
    await backupToHub(account, h.url, 'ivan', PASS)
    assert.notEqual((await client.lookup('ivan')).vaultHeader, null)
  })

  it('says clearly when the hub is not there', async () => {
    const d = dir()
    const r = await cli(['recover-keys', 'zed', '--hub', 'http://127.0.0.1:1', '--config-dir', d, '--passphrase-stdin', ...INSECURE], { input: PASS + '\n' })
    assert.equal(r.code, 28)
    assert.match(r.stderr, /cannot reach hub http:\/\/127\.0\.0\.1:1/)
  })
})

describe('local backup file', () => {
  it('backs up to a file sealed by passphrase and recovers from it', async () => {
    const a = dir()
    const init = await cli(['init', '--config-dir', a, ...INSECURE])
    const file = join(root, 'backup.space-keys')
    const b = await cli(['backup-keys', '--config-dir', a, '--to', file, '--passphrase-stdin'], { input: PASS + '\n' })
    assert.equal(b.code, 0, b.stderr)
    const account = await openAccount(a)
    assert.deepEqual(scanForSecrets(root, { entropy: account.identity.entropy, identityKey: account.identity.signing.privateKey }).filter(x => x.includes('backup')), [])
    const wrong = await cli(['recover-keys', '--from', file, '--config-dir', dir(), '--passphrase-stdin', ...INSECURE], { input: 'wrong one!\n' })
    assert.equal(wrong.code, 23)
    assert.equal(wrong.stderr, 'space recover-keys: wrong passphrase\n')
    assert.equal((await cli(['test-passphrase', '--from', file, '--passphrase-stdin'], { input: PASS + '\n' })).code, 0)
    const r = await cli(['recover-keys', '--from', file, '--config-dir', dir(), '--passphrase-stdin', ...INSECURE], { input: PASS + '\n' })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(publicKeyFrom(r.stdout), publicKeyFrom(init.stdout))
    const short = await cli(['backup-keys', '--config-dir', a, '--to', join(root, 'other.space-keys'), '--passphrase-stdin'], { input: 'short\n' })
    assert.equal(short.code, 2)
  })
})
