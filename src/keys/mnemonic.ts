// BIP39 mnemonics (English, 24 words = 256 bits of entropy): generation, strict parsing with a
// precise reason for every refusal, and the BIP39 seed that every identity key derives from.
import { entropyToMnemonic, mnemonicToEntropy, mnemonicToSeedSync } from '@scure/bip39'
import { wordlist } from '@scure/bip39/wordlists/english.js'
import { randomBytes } from 'node:crypto'
import { KeysError } from './errors.js'

export const MNEMONIC_WORDS = 24
export const ENTROPY_LEN = 32

const WORDS = new Set(wordlist)

/** A fresh 24-word mnemonic from 256 bits of OS randomness. */
export function generateEntropy (): Buffer { return randomBytes(ENTROPY_LEN) }

export function entropyToWords (entropy: Uint8Array): string {
  if (entropy.length !== ENTROPY_LEN) throw new RangeError(`entropy must be ${ENTROPY_LEN} bytes`)
  return entropyToMnemonic(entropy, wordlist)
}

/**
 * Parses a mnemonic typed or pasted by a person (any whitespace, any case) and returns its
 * entropy. Throws ERR_BAD_MNEMONIC naming the first problem: count, unknown word, checksum.
 */
export function parseMnemonic (input: string): Buffer {
  const words = input.normalize('NFKD').toLowerCase().trim().split(/\s+/).filter(w => w !== '')
  if (words.length !== MNEMONIC_WORDS) {
    throw new KeysError('ERR_BAD_MNEMONIC', `invalid mnemonic: expected ${MNEMONIC_WORDS} words, got ${words.length}`)
  }
  const bad = words.findIndex(w => !WORDS.has(w))
  if (bad >= 0) {
    throw new KeysError('ERR_BAD_MNEMONIC', `invalid mnemonic: word ${bad + 1} ("${words[bad]}") is not in the BIP39 English word list`)
  }
  try {
    return Buffer.from(mnemonicToEntropy(words.join(' '), wordlist))
  } catch {
    throw new KeysError('ERR_BAD_MNEMONIC', 'invalid mnemonic: checksum mismatch (a word is wrong or out of order)')
  }
}

/** The 64-byte BIP39 seed (PBKDF2-HMAC-SHA512, 2048 rounds, empty BIP39 passphrase). */
export function entropyToSeed (entropy: Uint8Array): Buffer {
  return Buffer.from(mnemonicToSeedSync(entropyToWords(entropy), ''))
}
