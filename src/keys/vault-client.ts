// Client of the hub's vault API. Turns HTTP answers into KeysErrors with stable codes; never
// sends anything but public keys, signatures, the sealed box and vsk.
import { ed25519Sign, type RawKeyPair } from './ed25519.js'
import { KeysError } from './errors.js'
import { API, authMessage, b64u, fromB64u, registerMessage, USERNAME_RE, type ErrorBody, type UserInfo } from './vault-protocol.js'

/** Loopback hosts, where plain http never leaves the machine. */
export function isLoopback (hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

export interface VaultClientOptions {
  /** Allow http:// to a host that is not loopback (--insecure-http). */
  insecureHttp?: boolean
}

export class VaultClient {
  readonly hub: string
  constructor (hub: string, opts: VaultClientOptions = {}) {
    let url: URL
    try {
      url = new URL(hub)
    } catch {
      throw new KeysError('ERR_HUB_UNAVAILABLE', `not a hub URL: ${hub}`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new KeysError('ERR_HUB_UNAVAILABLE', `not a hub URL: ${hub}`)
    // Over plain http anyone on the path could serve their own vault header (weak KDF
    // parameters) or read the sealed box and vsk: only loopback, or when asked for.
    if (url.protocol === 'http:' && !isLoopback(url.hostname) && opts.insecureHttp !== true) {
      throw new KeysError('ERR_INSECURE_HUB', `refusing plain http:// to hub ${url.origin}, which is not on this machine: use https://, or pass --insecure-http if the network path is trusted`)
    }
    this.hub = url.origin
  }

  private async call<T> (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    let res: Response
    try {
      res = await fetch(this.hub + path, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000)
      })
    } catch (err) {
      const why = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err)
      throw new KeysError('ERR_HUB_UNAVAILABLE', `cannot reach hub ${this.hub}: ${why}`, { cause: err })
    }
    const text = await res.text()
    if (res.ok) return (text === '' ? undefined : JSON.parse(text)) as T
    let e: ErrorBody = { error: 'unknown', message: text.slice(0, 200) }
    try { e = JSON.parse(text) } catch {}
    if (res.status === 429) {
      const retryAfter = Number(res.headers.get('retry-after') ?? '60')
      throw new KeysError('ERR_RATE_LIMITED', `hub: too many attempts, retry in ${retryAfter} s`, { retryAfter })
    }
    if (e.error === 'wrong_passphrase') throw new KeysError('ERR_WRONG_PASSPHRASE', 'wrong passphrase')
    if (res.status === 404) throw new KeysError('ERR_NOT_FOUND', `hub: ${e.message}`)
    if (e.error === 'username_taken' || e.error === 'key_registered') throw new KeysError('ERR_USERNAME_TAKEN', `hub: ${e.message}`)
    throw new KeysError('ERR_HUB_REFUSED', `hub refused (${res.status} ${e.error}): ${e.message}`)
  }

  /** Claims `username` for the identity; idempotent for the same key. Returns the user id. */
  async register (username: string, identity: RawKeyPair): Promise<string> {
    if (!USERNAME_RE.test(username)) throw new KeysError('ERR_BAD_USERNAME', `bad username "${username}": use 3-32 of a-z 0-9 . _ - starting with a letter or digit`)
    const timestamp = Date.now()
    const signature = ed25519Sign(identity.privateKey, registerMessage(username, identity.publicKey, timestamp))
    const r = await this.call<{ userId: string }>('POST', API.users, { username, publicKey: b64u(identity.publicKey), timestamp, signature: b64u(signature) })
    return r.userId
  }

  async lookup (username: string): Promise<UserInfo> {
    if (!USERNAME_RE.test(username)) throw new KeysError('ERR_BAD_USERNAME', `bad username "${username}"`)
    return await this.call<UserInfo>('GET', `${API.users}/${encodeURIComponent(username)}`)
  }

  /** Ed25519 challenge-response; the token authorises vault writes for a short while. */
  async authenticate (userId: string, identity: RawKeyPair): Promise<string> {
    const c = await this.call<{ challengeId: string, challenge: string }>('POST', API.challenge, { userId })
    const id = fromB64u(c.challengeId)
    const challenge = fromB64u(c.challenge)
    const uid = fromB64u(userId)
    if (id === undefined || challenge === undefined || uid === undefined) throw new KeysError('ERR_HUB_REFUSED', 'hub sent a malformed challenge')
    const signature = ed25519Sign(identity.privateKey, authMessage(id, uid, challenge))
    const t = await this.call<{ token: string }>('POST', API.token, { challengeId: c.challengeId, signature: b64u(signature) })
    return t.token
  }

  async putVault (token: string, box: Uint8Array, vsk: Uint8Array): Promise<void> {
    await this.call('PUT', API.vault, { box: b64u(box), vsk: b64u(vsk) }, { authorization: `Bearer ${token}` })
  }

  async fetchVault (userId: string, vsk: Uint8Array): Promise<Buffer> {
    const r = await this.call<{ box: string }>('POST', API.vaultFetch, { userId, vsk: b64u(vsk) })
    const box = fromB64u(r.box)
    if (box === undefined) throw new KeysError('ERR_VAULT_TAMPERED', 'hub sent a malformed vault box')
    return box
  }
}
