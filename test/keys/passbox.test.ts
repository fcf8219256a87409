// Passphrase boxes: the one sealed format under the keystore file, vault blob and backup file.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isKeysError } from '../../src/keys/errors.js'
import { BOX_HEADER_LEN, BoxPurpose, decodeBoxHeader, deriveBoxKeys, openBox, openWithPassphrase, sealWithPassphrase } from '../../src/keys/passbox.js'

const wrong = (e: unknown): boolean => isKeysError(e, 'ERR_WRONG_PASSPHRASE') && e.message === 'wrong passphrase'

describe('passphrase box', () => {
  const plain = Buffer.from('the identity entropy would be here')

  it('round-trips and records versioned parameters and a random salt', async () => {
    const a = await sealWithPassphrase(BoxPurpose.BackupFile, 'correct horse', plain)
    const b = await sealWithPassphrase(BoxPurpose.BackupFile, 'correct horse', plain)
    assert.equal(a.box[0], 1, 'version byte first')
    assert.notDeepEqual(a.header.salt, b.header.salt)
    assert.deepEqual(decodeBoxHeader(a.box).params, { N: 1024, r: 8, p: 1 }) // cheap test params
    assert.deepEqual(await openWithPassphrase(BoxPurpose.BackupFile, 'correct horse', a.box), plain)
    assert.equal(a.box.includes(plain), false)
  })

  it('normalises the passphrase (NFKC)', async () => {
    const { box } = await sealWithPassphrase(BoxPurpose.BackupFile, 'caf\u00e9 ok', plain)
    assert.deepEqual(await openWithPassphrase(BoxPurpose.BackupFile, 'cafe\u0301 ok', box), plain)
  })

  it('says exactly "wrong passphrase" for a wrong one', async () => {
    const { box } = await sealWithPassphrase(BoxPurpose.BackupFile, 'correct horse', plain)
    await assert.rejects(openWithPassphrase(BoxPurpose.BackupFile, 'correct horsf', box), wrong)
  })

  it('refuses altered bytes anywhere', async () => {
    const { box } = await sealWithPassphrase(BoxPurpose.Vault, 'pw-123456', plain)
    for (const i of [7, 20, BOX_HEADER_LEN + 3, box.length - 1]) {
      const t = Buffer.from(box)
      t[i] ^= 1
      await assert.rejects(openWithPassphrase(BoxPurpose.Vault, 'pw-123456', t))
    }
  })

  it('binds the purpose: a vault box is not a keystore', async () => {
    const { box, keys } = await sealWithPassphrase(BoxPurpose.Vault, 'pw-123456', plain)
    assert.throws(() => openBox(box, keys.vk, BoxPurpose.Keystore), e => isKeysError(e, 'ERR_BAD_FORMAT'))
    const relabelled = Buffer.from(box)
    relabelled[1] = BoxPurpose.Keystore
    assert.throws(() => openBox(relabelled, keys.vk, BoxPurpose.Keystore), (e: Error & { code?: string }) => e.code === 'ERR_AUTH')
  })

  it('splits vk and vsk so the server key says nothing of the sealing key', async () => {
    const { header, keys } = await sealWithPassphrase(BoxPurpose.Vault, 'pw-123456', plain)
    assert.equal(keys.vk.length, 32)
    assert.notDeepEqual(keys.vk, keys.vsk)
    assert.deepEqual(await deriveBoxKeys('pw-123456', header), keys)
  })

  it('refuses unknown versions and hostile parameters before deriving anything', () => {
    const h = Buffer.alloc(BOX_HEADER_LEN)
    h.set([1, 2, 1, 40, 8, 1, 0])
    assert.throws(() => decodeBoxHeader(h), /out-of-range/)
    h[0] = 9
    assert.throws(() => decodeBoxHeader(h), /unknown sealed key data version 9/)
    assert.throws(() => decodeBoxHeader(h.subarray(0, 5)), /truncated/)
  })
})
