// Tokens minted by tokens stay inside their parent: no scope it lacks, no later expiry, and
// they end with it (revoked or expired). The real token table in a temp config dir.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { isCtlError } from '../../src/ctl/errors.js'
import { TokenStore, ensureMasterToken, readMasterToken } from '../../src/ctl/tokens.js'

describe('tokens minted by tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'space-tokens-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const store = new TokenStore(dir, () => clock)
  const code = (c: string) => (e: unknown): boolean => isCtlError(e) && e.code === c

  it('setup: a master token in the file store', async () => {
    writeFileSync(join(dir, 'identity.json'), JSON.stringify({ version: 1, keystore: { backend: 'file', protection: 'none' } }))
    await ensureMasterToken(dir)
    assert.ok(store.verify(await readMasterToken(dir)).master)
  })

  it('a child never outlives its parent, and inherits its expiry when it asks for none', async () => {
    const master = store.verify(await readMasterToken(dir))
    const p = await store.create(master, { name: 'parent', allow: ['tokens:admin', 'status:read'], expiresInSec: 3600 })
    const parent = store.verify(p.token)
    await assert.rejects(store.create(parent, { name: 'longer', allow: ['status:read'], expiresInSec: 7200 }), code('ERR_FORBIDDEN'))
    const c = await store.create(parent, { name: 'child', allow: ['status:read'] })
    assert.equal(c.info.expiresAt, p.info.expiresAt)
    const shorter = await store.create(parent, { name: 'shorter', allow: ['status'], expiresInSec: 60 })
    assert.equal(shorter.info.expiresAt, new Date(clock + 60_000).toISOString())
  })

  it('a child holds no scope its parent lacks, however it is spelled', async () => {
    const master = store.verify(await readMasterToken(dir))
    const p = await store.create(master, { name: 'narrow', allow: ['tokens:admin', 'status'] })
    const narrow = store.verify(p.token)
    await assert.rejects(store.create(narrow, { name: 'wide', allow: ['keys:admin'] }), code('ERR_FORBIDDEN'))
    await assert.rejects(store.create(narrow, { name: 'wide2', allow: ['log:read'] }), code('ERR_FORBIDDEN'))
    // status:read grants only "status", which the parent holds by name: within it.
    assert.ok((await store.create(narrow, { name: 'same', allow: ['status:read'] })).token)
  })

  it('revoking a parent ends its children and grandchildren, at once and in the list', async () => {
    const master = store.verify(await readMasterToken(dir))
    const a = await store.create(master, { name: 'a', allow: ['tokens:admin', 'status:read'] })
    const b = await store.create(store.verify(a.token), { name: 'b', allow: ['tokens:admin', 'status:read'] })
    const c = await store.create(store.verify(b.token), { name: 'c', allow: ['status:read'] })
    const held = store.verify(c.token)
    await store.revoke('a')
    assert.throws(() => store.verify(c.token), code('ERR_TOKEN_REVOKED'))
    assert.throws(() => store.recheck(held), code('ERR_TOKEN_REVOKED'), 'an open connection loses it on its next request')
    assert.throws(() => store.verify(b.token), code('ERR_TOKEN_REVOKED'))
    assert.ok(store.list().filter(t => ['a', 'b', 'c'].includes(t.name)).every(t => t.revokedAt !== null))
  })

  it('a child ends when its parent expires', async () => {
    const master = store.verify(await readMasterToken(dir))
    const p = await store.create(master, { name: 'brief', allow: ['tokens:admin', 'status:read'], expiresInSec: 10 })
    const c = await store.create(store.verify(p.token), { name: 'brief-child', allow: ['status:read'] })
    assert.ok(store.verify(c.token))
    clock += 11_000
    assert.throws(() => store.verify(c.token), code('ERR_TOKEN_EXPIRED'))
  })
})
