// Mnemonic parsing, SLIP-10 (against the SLIP-0010 spec's vectors), identity derivation (frozen
// vectors: changing them would strand every existing user), device certificates.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { slip10Ed25519, ed25519FromSeed } from '../../src/keys/ed25519.js'
import { isKeysError } from '../../src/keys/errors.js'
import { certifyDevice, deriveIdentity, fingerprint, newDeviceKey, verifyDeviceCertificate } from '../../src/keys/identity.js'
import { entropyToWords, generateEntropy, parseMnemonic } from '../../src/keys/mnemonic.js'

const ZERO_WORDS = Array(23).fill('abandon').join(' ') + ' art'

describe('SLIP-10 ed25519', () => {
  const seed = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')
  it('matches SLIP-0010 test vector 1', () => {
    const m = slip10Ed25519(seed, [])
    assert.equal(m.chainCode.toString('hex'), '90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb')
    assert.equal(m.key.toString('hex'), '2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7')
    assert.equal(ed25519FromSeed(m.key).publicKey.toString('hex'), 'a4b2856bfec510abab89753fac1ac0e1112364e7d250545963f135f2a33188ed')
    const c = slip10Ed25519(seed, [0])
    assert.equal(c.chainCode.toString('hex'), '8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69')
    assert.equal(c.key.toString('hex'), '68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3')
    assert.equal(slip10Ed25519(seed, [0, 1, 2]).key.toString('hex'), '92a5b23c0b8a99e37d07df3fb9966917f5d06e02ddbd909c7e184371463e9fc9')
  })
})

describe('mnemonic', () => {
  it('encodes entropy per BIP39 (all-zero vector) and round-trips', () => {
    assert.equal(entropyToWords(Buffer.alloc(32)), ZERO_WORDS)
    const e = generateEntropy()
    assert.deepEqual(parseMnemonic(entropyToWords(e)), e)
  })

  it('accepts any case and whitespace', () => {
    assert.deepEqual(parseMnemonic('  ' + ZERO_WORDS.toUpperCase().replaceAll(' ', '\n\t ') + '\n'), Buffer.alloc(32))
  })

  const refused = (input: string, re: RegExp): void => {
    assert.throws(() => parseMnemonic(input), e => isKeysError(e, 'ERR_BAD_MNEMONIC') && re.test(e.message))
  }
  it('refuses a wrong word count', () => {
    refused(ZERO_WORDS.split(' ').slice(0, 23).join(' '), /expected 24 words, got 23/)
    refused('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', /expected 24 words, got 12/)
    refused('', /got 0/)
  })
  it('refuses an unknown word and names it', () => {
    const w = ZERO_WORDS.split(' ')
    w[6] = 'abandonn'
    refused(w.join(' '), /word 7 \("abandonn"\) is not in the BIP39 English word list/)
  })
  it('refuses a bad checksum', () => {
    refused(Array(24).fill('abandon').join(' '), /checksum mismatch/)
    const w = entropyToWords(Buffer.alloc(32, 7)).split(' ')
    ;[w[0], w[1]] = [w[1], w[0]]
    if (w[0] !== w[1]) refused(w.join(' '), /checksum mismatch/)
  })
})

describe('identity', () => {
  it('derives frozen keys from the all-zero mnemonic', () => {
    const id = deriveIdentity(Buffer.alloc(32))
    assert.equal(id.signing.publicKey.toString('hex'), FROZEN.identity)
    assert.equal(id.share.publicKey.toString('hex'), FROZEN.share)
    assert.equal(id.driveMaster.toString('hex'), FROZEN.drive)
    assert.equal(fingerprint(id.signing.publicKey), FROZEN.fingerprint)
  })

  it('gives different identities for different mnemonics and keeps keys apart', () => {
    const a = deriveIdentity(generateEntropy())
    const b = deriveIdentity(generateEntropy())
    assert.notDeepEqual(a.signing.publicKey, b.signing.publicKey)
    assert.notDeepEqual(a.driveMaster, a.signing.privateKey)
    assert.notDeepEqual(a.share.privateKey, a.signing.privateKey)
  })

  it('certifies a device key; any change breaks the certificate', () => {
    const id = deriveIdentity(generateEntropy())
    const dev = newDeviceKey()
    const cert = certifyDevice(id.signing, dev.publicKey)
    assert.equal(verifyDeviceCertificate(cert), true)
    assert.equal(verifyDeviceCertificate({ ...cert, issuedAt: cert.issuedAt + 1 }), false)
    assert.equal(verifyDeviceCertificate({ ...cert, devicePublicKey: newDeviceKey().publicKey }), false)
    const other = deriveIdentity(generateEntropy())
    assert.equal(verifyDeviceCertificate({ ...cert, identityPublicKey: other.signing.publicKey }), false)
  })
})

// Computed once by this implementation from entropy 00..00 and frozen (docs/keys.md).
const FROZEN = {
  identity: '19a03fb683d55eab15a45b6e80fd42604e9c95f2aeff23c491c905a96c683e33',
  share: '74142893cb95db29f003b96e3a4b7308688eff86c3fb99a59734a4ffe2076d04',
  drive: '2a3379cb7433d7e22e359f19bdf6f9525647abda198e3c47ae99269330d36696',
  fingerprint: '4c04-906d-a0c8-edec-1848'
}
