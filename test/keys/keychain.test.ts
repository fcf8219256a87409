// The OS keychain backend against a real Secret Service: gnome-keyring on a private session bus
// started by this test (and ended by it). The secret lives there; the config dir holds none.
import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KeychainStore, probeKeychain } from '../../src/keys/keystore.js'
import { loadDriveKey } from '../../src/keys/drive-key.js'
import { isKeysError } from '../../src/keys/errors.js'
import { deriveIdentity } from '../../src/keys/identity.js'
import { entropyToSeed, parseMnemonic } from '../../src/keys/mnemonic.js'
import { cli, mnemonicFrom, publicKeyFrom, scanForSecrets, startSecretService, tempDir, type SecretService } from './helpers.js'

describe('OS keychain (Secret Service via gnome-keyring)', () => {
  let ss: SecretService
  const root = tempDir()
  const savedBus = process.env.DBUS_SESSION_BUS_ADDRESS
  before(async () => {
    ss = await startSecretService()
    process.env.DBUS_SESSION_BUS_ADDRESS = ss.address // for the in-process checks below
  })
  after(async () => {
    if (savedBus === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS
    else process.env.DBUS_SESSION_BUS_ADDRESS = savedBus
    await ss?.stop()
    rmSync(root, { recursive: true, force: true })
  })

  it('answers the probe', async () => {
    assert.deepEqual(await probeKeychain(), { ok: true })
  })

  it('stores the identity in the keychain, restores it elsewhere, opens the same drive', async () => {
    const a = join(root, 'a')
    const b = join(root, 'b')
    const r = await cli(['init', '--config-dir', a], { env: ss.env })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /keystore\s+OS keychain \(Secret Service\)/)
    const words = mnemonicFrom(r.stdout)
    const d = await cli(['doctor', '--config-dir', a], { env: ss.env })
    assert.equal(d.code, 0, d.stdout)
    assert.match(d.stdout, /keychain\s+OS keychain answers/)
    assert.match(d.stdout, /backend\s+keychain/)
    assert.match(d.stdout, /secret\s+opens and matches/)

    const rr = await cli(['init', '--restore', '--config-dir', b, '--keystore', 'keychain'], { env: ss.env, input: words + '\n' })
    assert.equal(rr.code, 0, rr.stderr)
    assert.equal(publicKeyFrom(rr.stdout), publicKeyFrom(r.stdout))
    const ka = await loadDriveKey(a)
    assert.equal(ka.source, 'identity')
    assert.deepEqual(ka.key, (await loadDriveKey(b)).key)

    // Each config dir has its own keychain entry; neither dir holds a secret.
    const ca = JSON.parse(readFileSync(join(a, 'identity.json'), 'utf8'))
    const cb = JSON.parse(readFileSync(join(b, 'identity.json'), 'utf8'))
    assert.equal(ca.keystore.backend, 'keychain')
    assert.notEqual(ca.keystore.account, cb.keystore.account)
    const rec = (await new KeychainStore(ca.keystore.account).get())!
    const entropy = parseMnemonic(words)
    assert.deepEqual(rec.subarray(1, 33), entropy)
    const id = deriveIdentity(entropy)
    const secrets = { entropy, seed: entropyToSeed(entropy), identityKey: id.signing.privateKey, driveKey: id.driveMaster, deviceKey: rec.subarray(33), mnemonic: Buffer.from(words) }
    assert.deepEqual(scanForSecrets(root, secrets), [])

    // The keychain is where the secret is: without it the identity does not open.
    await new KeychainStore(ca.keystore.account).delete()
    await assert.rejects(loadDriveKey(a), e => isKeysError(e, 'ERR_KEYSTORE_CORRUPT') && /missing from the OS keychain/.test(e.message))
  })

  it('fails with a clear D-Bus error when the identity is in the keychain but no bus answers', async () => {
    const c = join(root, 'c')
    assert.equal((await cli(['init', '--config-dir', c], { env: ss.env })).code, 0)
    const { DBUS_SESSION_BUS_ADDRESS: _, ...noBus } = ss.env
    const d = await cli(['doctor', '--config-dir', c], { env: noBus })
    assert.equal(d.code, 24)
    assert.match(d.stdout, /secret\s+OS keychain unavailable: .*DBus/)
  })
})
