// `space hub`: the backup node's HTTP API: the vault service and the replication API (device
// auth, blocks, the IPFS Trustless Gateway; docs/hub.md). Plain node:http; a thin router over
// the services; binds 127.0.0.1 unless told otherwise (put TLS in front for anything public).
import { createServer, type IncomingMessage, type ServerOptions, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { API } from '../keys/vault-protocol.js'
import { VERSION } from '../version.js'
import { HubDb } from './db.js'
import { HubError } from './errors.js'
import { readJson, send } from './http.js'
import { ClientKeys } from './client-key.js'
import { MemoryBuckets, RateLimiter, type BucketPolicy } from './rate-limit.js'
import { DEFAULT_GUESS_LIMITS, VaultService, type GuessLimits } from './vault-service.js'
import { DeviceAuth, type DeviceSession } from './replication/auth.js'
import { openReplicationDb } from './replication/blocks-db.js'
import { blockRoutes } from './replication/blocks-routes.js'
import { HubBlocks } from './replication/blocks-store.js'
import { inPlaceReads } from './replication/socket-body.js'
import { UPLOAD_UPGRADE } from '../sync/transport-protocol.js'
import { EntryStore } from './replication/entries.js'
import { entryRoutes } from './replication/entries-routes.js'
import { SYNC_API } from '../sync/transport-protocol.js'
import { MemoryTrim } from '../memory.js'

export interface HubOptions {
  dataDir: string
  host?: string
  port?: number
  guessLimits?: GuessLimits
  /** Every request from one client address; a coarse flood guard in front of everything. */
  requestLimit?: BucketPolicy
  /** Requests of one authenticated device (block traffic comes in thousands of requests). */
  deviceRequestLimit?: BucketPolicy
  /** Registrations per client (and, `registrationTotal`, for everyone together). */
  registrationLimit?: BucketPolicy
  registrationTotal?: BucketPolicy
  /** Addresses of reverse proxies whose X-Forwarded-For is believed; nobody else's is. */
  trustedProxies?: string[]
  /** Open TCP connections at once; more are closed on accept. */
  maxConnections?: number
  log?: (line: string) => void
}

export const DEFAULT_MAX_CONNECTIONS = 1024
/** A person registers once per device: 5 at once, then one per 10 minutes per client. */
export const DEFAULT_REGISTRATION_LIMIT: BucketPolicy = { capacity: 5, refillPerSec: 1 / 600 }
export const DEFAULT_REGISTRATION_TOTAL: BucketPolicy = { capacity: 200, refillPerSec: 1 }

export const DEFAULT_DEVICE_REQUEST_LIMIT: BucketPolicy = { capacity: 20_000, refillPerSec: 5_000 }

export interface RunningHub {
  url: string
  port: number
  /** For the entry routes: the (user, device) a request's bearer token names, or a HubError 401. */
  authenticate: (req: IncomingMessage) => DeviceSession
  /** Whether the identity revoked this device (the entry store refuses its later writes). */
  isRevoked: (userId: Uint8Array, devicePublicKey: Uint8Array) => boolean
  close: () => Promise<void>
}

export async function startHub (opts: HubOptions): Promise<RunningHub> {
  const log = opts.log ?? (() => {})
  const db = new HubDb(opts.dataDir)
  const vault = new VaultService(db, opts.guessLimits ?? DEFAULT_GUESS_LIMITS)
  // A flood guard in front of everything, per client address, in memory.
  const flood = new RateLimiter(new MemoryBuckets())
  const requestLimit = opts.requestLimit ?? { capacity: 300, refillPerSec: 10 }
  const registrationLimit = opts.registrationLimit ?? DEFAULT_REGISTRATION_LIMIT
  const registrationTotal = opts.registrationTotal ?? DEFAULT_REGISTRATION_TOTAL
  const deviceRequestLimit = opts.deviceRequestLimit ?? DEFAULT_DEVICE_REQUEST_LIMIT
  const keys = new ClientKeys(opts.trustedProxies)
  const replDb = openReplicationDb(opts.dataDir)
  let blocks: HubBlocks
  try {
    blocks = await HubBlocks.open(opts.dataDir, replDb, log)
  } catch (err) {
    replDb.close()
    db.close()
    throw err
  }
  // Entries are accepted only once every block they list is durable here as that user's (a group
  // commit first, for blocks uploaded with durable=with-entry).
  const entries = new EntryStore(opts.dataDir, {
    hasBlocks: async (cids, user) => await blocks.durable(user, cids),
    getBlock: async (cid, user) => await blocks.get(user, cid)
  })
  const auth = new DeviceAuth(db, entries)
  const blockRoute = blockRoutes({ auth, blocks, log })
  const entryDeps = { auth, entries, identityOf: (id: Uint8Array) => db.userById(id)?.publicKey }

  /** The request allowance: a HubError 429 past it. The client's key, for the registration limit. */
  function admit (req: IncomingMessage): string {
    // A device with a valid token has its own, larger allowance; everyone else shares the
    // address's.
    const session = auth.sessionOf(req)
    const client = keys.keyOf(req.socket.remoteAddress, req.headers['x-forwarded-for'])
    const limited = session !== undefined
      ? flood.take([[`dev:${session.devicePublicKey.toString('hex')}`, deviceRequestLimit]])
      : flood.take([[`req:${client}`, requestLimit]])
    if (!limited.ok) throw new HubError(429, 'rate_limited', 'too many requests', { 'Retry-After': String(limited.retryAfter) })
    return client
  }

  async function route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = admit(req)
    const url = new URL(req.url ?? '/', 'http://hub')
    const path = url.pathname
    const method = req.method ?? 'GET'
    if (method === 'POST' && path === SYNC_API.challenge) return send(res, 200, auth.challenge(await readJson(req)))
    if (method === 'POST' && path === SYNC_API.token) return send(res, 200, auth.token(await readJson(req)))
    if (method === 'POST' && path === SYNC_API.revoke) return send(res, 200, auth.revoke(await readJson(req)))
    if (method === 'GET' && path === SYNC_API.revoked) return send(res, 200, { records: auth.revocations(auth.authenticate(req).userId) })
    if (await blockRoute.route(req, res, url)) return
    if (await entryRoutes(entryDeps, req, res, method, url)) return
    if (method === 'GET' && path === '/v1/health') return send(res, 200, { ok: true, version: VERSION })
    if (method === 'POST' && path === API.users) {
      const reg = flood.take([[`reg:${client}`, registrationLimit], ['reg:*', registrationTotal]])
      if (!reg.ok) throw new HubError(429, 'rate_limited', 'too many registrations', { 'Retry-After': String(reg.retryAfter) })
      const r = vault.register(await readJson(req))
      return send(res, r.status, { userId: r.userId })
    }
    if (method === 'GET' && path.startsWith(API.users + '/')) return send(res, 200, vault.lookup(decodeURIComponent(path.slice(API.users.length + 1))))
    if (method === 'POST' && path === API.challenge) return send(res, 200, vault.challenge(await readJson(req)))
    if (method === 'POST' && path === API.token) return send(res, 200, vault.token(await readJson(req)))
    if (method === 'PUT' && path === API.vault) {
      await vault.putVault(req.headers.authorization, await readJson(req))
      return send(res, 204)
    }
    if (method === 'POST' && path === API.vaultFetch) return send(res, 200, await vault.fetchVault(client, await readJson(req)))
    throw new HubError(404, 'not_found', `no route ${method} ${path}`)
  }

  // Only the in-place block upload is an upgrade: a request with any other Upgrade header (h2c,
  // websocket) is served as a plain one (a node without this option sends all to the listener).
  const upgrades = { shouldUpgradeCallback: (req: IncomingMessage) => inPlaceReads && (req.headers.upgrade ?? '').toLowerCase() === UPLOAD_UPGRADE }
  const server = createServer(upgrades as ServerOptions, (req, res) => {
    route(req, res).catch((err: unknown) => {
      // The client went away mid-request (an interrupted upload): nobody to answer, nothing wrong here.
      if (!(err instanceof HubError) && (req.destroyed || res.destroyed) && (err as NodeJS.ErrnoException)?.code === 'ECONNRESET') return
      if (res.headersSent) { log(`hub: ${req.method} ${req.url} failed mid-answer: ${String(err)}`); res.destroy(); return }
      if (err instanceof HubError) return send(res, err.status, { error: err.code, message: err.message }, err.headers)
      log(`hub: internal error on ${req.method} ${req.url}: ${err instanceof Error ? err.stack : String(err)}`)
      send(res, 500, { error: 'internal', message: 'internal error' })
    })
  })
  // Block uploads whose body is read from the socket in place (docs/hub.md); without the
  // listener (a node that cannot), such a request is served as a plain PUT.
  if (inPlaceReads) server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => { void blockRoute.upgrade(req, socket, head, () => { admit(req) }) })
  server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  server.headersTimeout = 10_000
  // A whole request body must arrive within this: a 32 MiB CAR batch needs ~2.2 Mbit/s.
  server.requestTimeout = 120_000

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port ?? 7470, opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
  } catch (err) {
    await blocks.close()
    entries.close()
    replDb.close()
    db.close()
    throw err
  }
  // What serving a burst used goes back once the hub is quiet (V8's pooled heap pages and
  // glibc's free chunks: src/memory.ts): 64 MiB up and down left it at 154-173 MiB otherwise.
  const trim = new MemoryTrim({ releaseMemory: () => {} })
  trim.start()
  const addr = server.address() as AddressInfo
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    authenticate: req => auth.authenticate(req),
    isRevoked: (userId, dev) => auth.isRevoked(userId, dev),
    close: async () => {
      trim.stop()
      server.closeAllConnections()
      blockRoute.closeAll()
      await new Promise<void>(resolve => server.close(() => resolve()))
      await blocks.close()
      entries.close()
      replDb.close()
      db.close()
    }
  }
}
