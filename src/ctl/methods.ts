// What each control method does, on top of the narrow DaemonApi the composition root provides.
// The same table runs behind the socket and, for the few methods that make sense without a
// daemon (status, whoami, log, keys.*), in-process in the CLI: one implementation either way.
import { promises as fsp } from 'node:fs'
import { join, resolve } from 'node:path'
import { createAccount, openAccount, readIdentityConfig, requireIdentityConfig, writeIdentityConfig, KEYSTORE_PASSPHRASE_ENV, type KeystoreChoice } from '../keys/account.js'
import { backupToFile, backupToHub, fetchFromHub, readBackupFile } from '../keys/backup.js'
import { retireTemporaryKey } from '../keys/drive-key.js'
import { KeysError } from '../keys/errors.js'
import { CtlError } from './errors.js'
import { bool, int, objectParams, PROTOCOL_VERSION, reqStr, str, strList, type LogEntry, type StatusResult, type TokenInfo } from './protocol.js'
import type { Call, Handler, Handlers } from './server.js'
import type { Grant } from './tokens.js'
import { listDevices, revokeByName, type LocalLogAccess } from '../sync/device-admin.js'

/** The slice of the daemon the methods need. Implemented in daemon.ts. */
export interface DaemonApi {
  readonly configDir: string
  readonly dataDir: string
  readonly socketPath: string | null
  readonly version: string
  readonly startedAt: string
  state: () => { mounted: boolean, mountpoint: string | null }
  /** Mounts the drive at `mountpoint`; ERR_ALREADY_MOUNTED when it is. */
  mount: (mountpoint: string) => Promise<string>
  /** Commits and unmounts; with `exit`, the serving process ends after answering. */
  unmount: (opts: { exit: boolean }) => Promise<string>
  log: () => Promise<LogEntry[]>
  tokens: {
    create: (by: Grant, req: { name: string, allow: string[], expiresInSec?: number }) => Promise<{ token: string, info: TokenInfo }>
    list: () => TokenInfo[]
    revoke: (idOrName: string) => Promise<TokenInfo>
  } | null
  counts: () => { connections: number, subscribers: number }
  /** What sync is doing (src/sync/attach.ts FullSyncStatus), or null when no hub is configured or the drive is not mounted. */
  syncStatus: () => Promise<unknown>
  /** The running sync's log state (revocations are recorded there), or null: the state file is used. */
  syncAttachment: () => LocalLogAccess | null
}

/** Sync, transport and device-admin errors keep their code in data.cause. */
async function syncCall<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (err instanceof KeysError) throw new CtlError('ERR_KEYS', err.message, { cause: err.code })
    if (err instanceof Error && !(err instanceof CtlError) && typeof code === 'string') throw new CtlError('ERR_SYNC', err.message, { cause: code })
    throw err
  }
}

/** Keys errors keep their own code in data.cause, so the CLI maps them to the same exit codes. */
async function keysCall<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof KeysError) throw new CtlError('ERR_KEYS', err.message, { cause: err.code, ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}) })
    throw err
  }
}

/** Sizes of the store's files, with progress: a store of many packs takes a moment. */
async function scanStore (dataDir: string, call: Pick<Call, 'progress'>): Promise<{ bytes: number, files: number }> {
  const paths: string[] = []
  for (const dir of [dataDir, join(dataDir, 'packs')]) {
    for (const name of await fsp.readdir(dir).catch(() => [] as string[])) paths.push(join(dir, name))
  }
  let bytes = 0
  let files = 0
  for (let i = 0; i < paths.length; i++) {
    const st = await fsp.stat(paths[i]).catch(() => null)
    if (st?.isFile() === true) { bytes += st.size; files++ }
    call.progress('scanning the store', i + 1, paths.length)
  }
  return { bytes, files }
}

const DURATION_MAX_SEC = 10 * 365 * 24 * 3600

export function buildHandlers (api: DaemonApi): Handlers {
  const tokens = (): NonNullable<DaemonApi['tokens']> => {
    if (api.tokens === null) throw new CtlError('ERR_NO_DAEMON', 'token management needs the daemon')
    return api.tokens
  }
  const keystorePassphrase = (p: Record<string, unknown>): string | undefined => str(p, 'keystorePassphrase') ?? process.env[KEYSTORE_PASSPHRASE_ENV]

  const status: Handler = async (params, call) => {
    objectParams(params, [])
    const { mounted, mountpoint } = api.state()
    const store = await scanStore(api.dataDir, call)
    const id = await readIdentityConfig(api.configDir).catch(() => null)
    const counts = api.counts()
    const r: StatusResult = {
      version: api.version,
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      startedAt: api.startedAt,
      mounted,
      mountpoint,
      dataDir: api.dataDir,
      configDir: api.configDir,
      socket: api.socketPath,
      storeBytes: store.bytes,
      storeFiles: store.files,
      identity: id === null ? null : { publicKey: id.identity.publicKey, fingerprint: id.identity.fingerprint },
      connections: counts.connections,
      subscribers: counts.subscribers
    }
    return r
  }

  return {
    status,

    'sync.status': async (params) => {
      objectParams(params, [])
      return { sync: await api.syncStatus() }
    },

    devices: async (params) => {
      objectParams(params, [])
      return { devices: await syncCall(async () => await listDevices(api.configDir)) }
    },

    'devices.revoke': async (params) => {
      const p = objectParams(params, ['name'])
      const name = reqStr(p, 'name', { max: 128 })
      return await syncCall(async () => await revokeByName(api.configDir, api.dataDir, name, api.syncAttachment()))
    },

    whoami: async (params) => {
      objectParams(params, [])
      const c = await keysCall(async () => await requireIdentityConfig(api.configDir))
      return { publicKey: c.identity.publicKey, fingerprint: c.identity.fingerprint, sharePublicKey: c.identity.sharePublicKey, devicePublicKey: c.device.publicKey, username: c.vault?.username ?? null, hub: c.vault?.hub ?? null }
    },

    log: async (params) => {
      const p = objectParams(params, ['limit'])
      const limit = int(p, 'limit', 1, 100_000) ?? 20
      const entries = await api.log()
      return { entries: entries.reverse().slice(0, limit) }
    },

    mount: async (params) => {
      const p = objectParams(params, ['mountpoint'])
      return { mountpoint: await api.mount(resolve(reqStr(p, 'mountpoint'))) }
    },

    unmount: async (params) => {
      const p = objectParams(params, ['exit'])
      const exit = bool(p, 'exit') ?? true
      return { mountpoint: await api.unmount({ exit }), exiting: exit, pid: process.pid }
    },

    'keys.backup': async (params, call) => {
      const p = objectParams(params, ['passphrase', 'to', 'hub', 'username', 'keystorePassphrase', 'insecureHttp'])
      const passphrase = reqStr(p, 'passphrase')
      const to = str(p, 'to')
      const insecureHttp = bool(p, 'insecureHttp') === true
      return await keysCall(async () => {
        const steps = to !== undefined ? 2 : 3
        call.progress('opening the keystore', 0, steps)
        const config = await requireIdentityConfig(api.configDir)
        const account = await openAccount(api.configDir, { passphrase: keystorePassphrase(p) })
        if (to !== undefined) {
          call.progress('sealing under the passphrase (scrypt)', 1, steps)
          const file = resolve(to)
          await backupToFile(account, file, passphrase)
          call.progress('done', steps, steps)
          return { file }
        }
        const hub = str(p, 'hub') ?? config.vault?.hub
        const username = str(p, 'username') ?? config.vault?.username
        if (hub === undefined || hub === '') throw new CtlError('ERR_INVALID_PARAMS', 'no hub: pass "hub"', { param: 'hub' })
        if (username === undefined || username === '') throw new CtlError('ERR_INVALID_PARAMS', 'pass "username": the name to recover with', { param: 'username' })
        call.progress('registering, sealing (scrypt) and uploading', 1, steps)
        const vault = await backupToHub(account, hub, username, passphrase, { insecureHttp })
        call.progress('saving the config', 2, steps)
        await writeIdentityConfig(api.configDir, { ...account.config, vault })
        call.progress('done', steps, steps)
        return { hub: vault.hub, username: vault.username }
      })
    },

    'keys.recover': async (params, call) => {
      const p = objectParams(params, ['passphrase', 'from', 'hub', 'username', 'keystore', 'keystorePassphrase', 'insecureHttp'])
      const passphrase = reqStr(p, 'passphrase')
      const from = str(p, 'from')
      const backend = str(p, 'keystore') ?? 'keychain'
      if (backend !== 'keychain' && backend !== 'file') throw new CtlError('ERR_INVALID_PARAMS', 'parameter "keystore" must be "keychain" or "file"', { param: 'keystore' })
      // For the file keystore, a missing keystorePassphrase means --insecure-no-passphrase.
      const choice: KeystoreChoice = backend === 'keychain' ? { backend } : { backend, passphrase: str(p, 'keystorePassphrase') ?? null }
      return await keysCall(async () => {
        if (await readIdentityConfig(api.configDir) !== null) throw new KeysError('ERR_IDENTITY_EXISTS', `an identity already exists in ${api.configDir}`)
        call.progress('fetching and opening the backup (scrypt)', 0, 2)
        let entropy: Buffer
        let vault
        if (from !== undefined) {
          entropy = await readBackupFile(resolve(from), passphrase)
        } else {
          const hub = reqStr(p, 'hub')
          const r = await fetchFromHub(hub, reqStr(p, 'username'), passphrase, { insecureHttp: bool(p, 'insecureHttp') === true })
          entropy = r.entropy
          vault = r.vault
        }
        call.progress('installing the identity', 1, 2)
        const account = await createAccount(api.configDir, entropy, choice)
        if (vault !== undefined) await writeIdentityConfig(api.configDir, { ...account.config, vault })
        const retired = await retireTemporaryKey(api.configDir)
        call.progress('done', 2, 2)
        return { publicKey: account.config.identity.publicKey, fingerprint: account.config.identity.fingerprint, keystore: account.config.keystore, retiredKeyFile: retired }
      })
    },

    'tokens.create': async (params, call) => {
      const p = objectParams(params, ['name', 'allow', 'expiresIn'])
      const expiresInSec = int(p, 'expiresIn', 1, DURATION_MAX_SEC)
      const { token, info } = await tokens().create(call.grant, { name: reqStr(p, 'name', { max: 64 }), allow: strList(p, 'allow', 32) ?? [], ...(expiresInSec !== undefined ? { expiresInSec } : {}) })
      return { ...info, token }
    },

    'tokens.list': async (params) => {
      objectParams(params, [])
      return { tokens: tokens().list() }
    },

    'tokens.revoke': async (params) => {
      const p = objectParams(params, ['token'])
      return await tokens().revoke(reqStr(p, 'token', { max: 128 }))
    }
  }
}
