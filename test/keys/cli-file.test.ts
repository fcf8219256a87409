// `space init / whoami / doctor` with the encrypted file keystore (no session bus at all), and
// the drive key they hand to the filesystem. Runs the real CLI.
import assert from 'node:assert/strict'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { FileKeystore } from '../../src/keys/keystore.js'
import { loadDriveKey } from '../../src/keys/drive-key.js'
import { isKeysError } from '../../src/keys/errors.js'
import { deriveIdentity, LABEL_DRIVE_MASTER } from '../../src/keys/identity.js'
import { entropyToSeed, parseMnemonic } from '../../src/keys/mnemonic.js'
import { hkdf } from '../../src/crypto/index.js'
import { baseEnv, cli, mnemonicFrom, publicKeyFrom, scanForSecrets, tempDir } from './helpers.js'

const root = tempDir()
after(() => rmSync(root, { recursive: true, force: true }))
let n = 0
const dir = (): string => join(root, `c${n++}`)

const INSECURE = ['--keystore', 'file', '--insecure-no-passphrase']

describe('space init with the file keystore', () => {
  it('creates an identity, shows 24 words once, and whoami agrees', async () => {
    const a = dir()
    const r = await cli(['init', '--config-dir', a, ...INSECURE])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /WARNING: --insecure-no-passphrase/)
    const words = mnemonicFrom(r.stdout)
    const pk = publicKeyFrom(r.stdout)
    assert.equal(pk, deriveIdentity(parseMnemonic(words)).signing.publicKey.toString('hex'))
    const w = await cli(['whoami', '--config-dir', a])
    assert.equal(w.code, 0)
    assert.equal(publicKeyFrom(w.stdout), pk)
    assert.match(w.stdout, /fingerprint\s+[0-9a-f]{4}(-[0-9a-f]{4}){4}/)
    assert.equal(statSync(a).mode & 0o777, 0o700)
    assert.equal(statSync(join(a, 'keystore.bin')).mode & 0o777, 0o600)
    assert.equal((await cli(['init', '--config-dir', a, ...INSECURE])).code, 21, 'refuses to overwrite an identity')
  })

  it('restores from stdin to the same identity and the same drive key, with no secret on disk', async () => {
    const a = dir()
    const b = dir()
    const words = mnemonicFrom((await cli(['init', '--config-dir', a, ...INSECURE])).stdout)
    const r = await cli(['init', '--restore', '--config-dir', b, ...INSECURE], { input: words.split(' ').join('\n') + '\n' })
    assert.equal(r.code, 0, r.stderr)
    assert.doesNotMatch(r.stdout, /RECOVERY PHRASE/, 'a restore does not print the words')
    assert.equal(publicKeyFrom((await cli(['whoami', '--config-dir', b])).stdout), publicKeyFrom((await cli(['whoami', '--config-dir', a])).stdout))

    const ka = await loadDriveKey(a)
    const kb = await loadDriveKey(b)
    assert.equal(ka.source, 'identity')
    assert.deepEqual(ka.key, kb.key)
    const entropy = parseMnemonic(words)
    assert.deepEqual(ka.key, hkdf(entropyToSeed(entropy), LABEL_DRIVE_MASTER))

    const id = deriveIdentity(entropy)
    const record = (await new FileKeystore(b, null).get())!
    const secrets = {
      entropy, seed: entropyToSeed(entropy), identityKey: id.signing.privateKey, shareKey: id.share.privateKey,
      driveKey: id.driveMaster, deviceKey: record.subarray(33), mnemonic: Buffer.from(words)
    }
    assert.deepEqual(scanForSecrets(a, secrets), [])
    assert.deepEqual(scanForSecrets(b, secrets), [])
    // The scan itself works: it finds the public key that identity.json does hold.
    assert.equal(scanForSecrets(b, { pk: id.signing.publicKey }).length, 1)
  })

  it('refuses bad mnemonics with a precise message and creates nothing', async () => {
    const words = Array(23).fill('abandon').join(' ') + ' art'
    const cases: Array<[string, RegExp]> = [
      [words.split(' ').slice(1).join(' '), /expected 24 words, got 23/],
      [words.replace('art', 'arts'), /word 24 \("arts"\) is not in the BIP39 English word list/],
      [words.replace('art', 'zoo'), /checksum mismatch/]
    ]
    for (const [input, re] of cases) {
      const c = dir()
      const r = await cli(['init', '--restore', '--config-dir', c, ...INSECURE], { input })
      assert.equal(r.code, 22)
      assert.match(r.stderr, re)
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line')
      assert.equal(existsSync(join(c, 'identity.json')), false)
    }
    const argv = await cli(['init', '--restore', words, '--config-dir', dir()])
    assert.equal(argv.code, 2, 'a mnemonic on the command line is refused')
  })

  it('protects the keystore with a passphrase when one is given', async () => {
    const a = dir()
    const env = baseEnv({ SPACE_KEYSTORE_PASSPHRASE: 'keystore-pass-1' })
    assert.equal((await cli(['init', '--config-dir', a, '--keystore', 'file'], { env })).code, 0)
    const locked = await cli(['doctor', '--config-dir', a])
    assert.equal(locked.code, 25)
    assert.match(locked.stdout, /locked/)
    const bad = await cli(['doctor', '--config-dir', a], { env: baseEnv({ SPACE_KEYSTORE_PASSPHRASE: 'nope' }) })
    assert.equal(bad.code, 23)
    assert.match(bad.stdout, /wrong passphrase/)
    const ok = await cli(['doctor', '--config-dir', a], { env })
    assert.equal(ok.code, 0, ok.stdout)
    assert.match(ok.stdout, /backend\s+file: encrypted file keystore/)
    assert.match(ok.stdout, /secret\s+opens and matches/)
    await assert.rejects(loadDriveKey(a), e => isKeysError(e, 'ERR_KEYSTORE_LOCKED'))
    assert.equal((await loadDriveKey(a, { passphrase: 'keystore-pass-1' })).source, 'identity')
    // Without a terminal, a passphrase or the insecure flag, init refuses rather than guess.
    const none = await cli(['init', '--config-dir', dir(), '--keystore', 'file'])
    assert.equal(none.code, 25)
    assert.match(none.stderr, /needs a passphrase/)
  })

  it('falls back to the file keystore when no keychain answers, and says so', async () => {
    const a = dir()
    const r = await cli(['init', '--config-dir', a, '--insecure-no-passphrase'])
    assert.equal(r.code, 0)
    const d = await cli(['doctor', '--config-dir', a])
    assert.equal(d.code, 0)
    assert.match(d.stdout, /keychain\s+not available: .*D-?Bus/i)
    assert.match(d.stdout, /backend\s+file/)
    const forced = await cli(['init', '--config-dir', dir(), '--keystore', 'keychain'])
    assert.equal(forced.code, 24)
    assert.match(forced.stderr, /OS keychain unavailable: .*DBus/)
  })

  it('prints usage for --help', async () => {
    for (const c of ['init', 'whoami', 'doctor', 'hub', 'backup-keys', 'recover-keys', 'test-passphrase']) {
      const r = await cli([c, '--help'])
      assert.equal(r.code, 0)
      assert.match(r.stdout, new RegExp(`usage: space ${c}`))
    }
  })
})

describe('loadDriveKey', () => {
  it('uses a temporary 0600 key file only when asked to create, and init retires it', async () => {
    const a = dir()
    await assert.rejects(loadDriveKey(a), e => isKeysError(e, 'ERR_NO_IDENTITY'))
    const t = await loadDriveKey(a, { create: true })
    assert.equal(t.source, 'temporary-keyfile')
    assert.equal(t.key.length, 32)
    assert.equal(statSync(join(a, 'master.key')).mode & 0o777, 0o600)
    assert.equal(statSync(a).mode & 0o777, 0o700)
    assert.deepEqual((await loadDriveKey(a)).key, t.key)

    const r = await cli(['init', '--config-dir', a, ...INSECURE])
    assert.equal(r.code, 0)
    assert.match(r.stderr, /temporary drive key is no longer used/)
    const k = await loadDriveKey(a)
    assert.equal(k.source, 'identity')
    assert.notDeepEqual(k.key, t.key)
    assert.equal(existsSync(join(a, 'master.key')), false)
  })

  it('refuses a damaged temporary key file', async () => {
    const a = dir()
    await loadDriveKey(a, { create: true })
    writeFileSync(join(a, 'master.key'), readFileSync(join(a, 'master.key')).subarray(0, 31))
    await assert.rejects(loadDriveKey(a), e => isKeysError(e, 'ERR_BAD_FORMAT'))
  })
})
