// The entry half of the replication API over HTTP (docs/hub.md): a device appends its log's
// entries, long-polls for other devices' new entries of the drive, records its device record,
// and lists the identity's devices. Every route needs a device token
// (auth.ts); the entry store (entries.ts) makes the receipt checks, so this file only parses and
// answers. A refused entry answers 409/422 with the SyncError's code and message. Revocations
// have their route beside device authentication (auth.ts: they need no token).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HubError, badRequest } from '../errors.js'
import { send } from '../http.js'
import type { DeviceAuth, DeviceSession } from './auth.js'
import type { EntryStore, Owner } from './entries.js'
import { SyncError } from '../../sync/errors.js'
import * as cbor from '@ipld/dag-cbor'

export const ENTRY_API = {
  /** POST an entry (body: its dag-cbor bytes); GET ?after=DEV:SEQ,...&wait=MS: entries past those. */
  entries: (drive: string) => `/sync/v1/drives/${drive}/entries`,
  /** POST a group of one log's next entries (body: a dag-cbor list of their bytes): all accepted or none. */
  entryGroups: (drive: string) => `/sync/v1/drives/${drive}/entry-groups`,
  devices: '/sync/v1/devices'
} as const

const MAX_ENTRY_BYTES = 1024 * 1024
const MAX_WAIT_MS = 30_000
const MAX_ANSWER_ENTRIES = 1000
/** Entries per group at most, and the group's body (a pusher's group is ~10 entries of a few KiB). */
export const MAX_GROUP_ENTRIES = 256
const MAX_GROUP_BYTES = 16 * 1024 * 1024

export interface EntryRouteDeps {
  auth: Pick<DeviceAuth, 'authenticate'>
  entries: EntryStore
  /** The identity public key of a hub user (from the user table). */
  identityOf: (userId: Uint8Array) => Uint8Array | undefined
}

async function readBytes (req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of req) {
    size += (c as Buffer).length
    if (size > limit) throw new HubError(413, 'too_large', `body larger than ${limit} bytes`)
    chunks.push(c as Buffer)
  }
  return Buffer.concat(chunks)
}

function driveOf (s: string): Buffer {
  if (!/^[0-9a-f]{32}$/.test(s)) throw new HubError(400, 'bad_drive', 'a drive id is 32 hex digits')
  return Buffer.from(s, 'hex')
}

function parseAfter (q: string | null): Array<{ dev: Buffer, seq: number }> {
  if (q == null || q === '') return []
  return q.split(',').map(part => {
    const m = /^([0-9a-f]{64}):(\d{1,15})$/.exec(part)
    if (m == null) throw badRequest('after must be DEVICEKEYHEX:SEQ,...')
    return { dev: Buffer.from(m[1], 'hex'), seq: Number(m[2]) }
  })
}

/** A group's body: a dag-cbor list of 1..MAX_GROUP_ENTRIES byte strings, each an entry's bytes. */
function parseGroup (body: Buffer): Uint8Array[] {
  let v: unknown
  try { v = cbor.decode(body) } catch { throw badRequest('an entry group is a dag-cbor list of entries (byte strings)') }
  if (!Array.isArray(v) || !v.every(e => e instanceof Uint8Array)) throw badRequest('an entry group is a dag-cbor list of entries (byte strings)')
  if (v.length === 0) throw badRequest('an entry group holds at least one entry')
  if (v.length > MAX_GROUP_ENTRIES) throw new HubError(413, 'too_large', `at most ${MAX_GROUP_ENTRIES} entries per group`)
  if (v.some(e => (e as Uint8Array).length > MAX_ENTRY_BYTES)) throw new HubError(413, 'too_large', `an entry is at most ${MAX_ENTRY_BYTES} bytes`)
  return v as Uint8Array[]
}

function syncRefusal (err: SyncError): HubError {
  const status = err.code === 'ERR_SYNC_BLOCKS_MISSING' ? 409 : err.code === 'ERR_SYNC_REVOKED' ? 403 : 422
  return new HubError(status, err.code.toLowerCase().replace(/^err_/, ''), err.message)
}

/** Routes one request if it is an entry route; false otherwise. */
export async function entryRoutes (deps: EntryRouteDeps, req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<boolean> {
  const path = url.pathname
  const m = /^\/sync\/v1\/drives\/([^/]+)\/entries$/.exec(path)
  const g = /^\/sync\/v1\/drives\/([^/]+)\/entry-groups$/.exec(path)
  const isDevices = path === ENTRY_API.devices
  if (m == null && g == null && !isDevices) return false
  const session: DeviceSession = deps.auth.authenticate(req)
  const identity = deps.identityOf(session.userId)
  if (identity === undefined) throw new HubError(401, 'unauthorized', 'unknown user')
  const owner: Owner = { user: session.userId, identity }
  try {
    if (m != null && method === 'POST') {
      const drive = driveOf(m[1])
      const r = await deps.entries.append(owner, drive, await readBytes(req, MAX_ENTRY_BYTES))
      send(res, 200, { status: r.status, seq: r.seq, cid: r.cid.toString() })
      return true
    }
    if (g != null && method === 'POST') {
      const drive = driveOf(g[1])
      const rs = await deps.entries.appendAll(owner, drive, parseGroup(await readBytes(req, MAX_GROUP_BYTES)))
      send(res, 200, { results: rs.map(r => ({ status: r.status, seq: r.seq, cid: r.cid.toString() })) })
      return true
    }
    if (m != null && method === 'GET') {
      const drive = driveOf(m[1])
      const after = parseAfter(url.searchParams.get('after'))
      const wait = Math.min(Math.max(0, Number(url.searchParams.get('wait') ?? 0) || 0), MAX_WAIT_MS)
      const ac = new AbortController()
      res.on('close', () => ac.abort())
      const w = await deps.entries.wait(owner.user, drive, after, wait, ac.signal)
      const known = new Map(after.map(a => [a.dev.toString('hex'), a.seq]))
      const out: string[] = []
      for (const h of w.heads) {
        const from = known.get(h.dev.toString('hex')) ?? 0
        if (h.seq <= from) continue
        for (const e of deps.entries.list(owner.user, drive, h.dev, from, MAX_ANSWER_ENTRIES - out.length)) out.push(e.bytes.toString('base64'))
        if (out.length >= MAX_ANSWER_ENTRIES) break
      }
      send(res, 200, { entries: out, heads: w.heads.map(h => ({ dev: h.dev.toString('hex'), seq: h.seq, cid: h.cid.toString() })) })
      return true
    }
    if (isDevices && method === 'PUT') {
      const rec = deps.entries.putDevice(owner, await readBytes(req, 64 * 1024))
      send(res, 200, { device: rec.devicePublicKey.toString('hex'), name: rec.name })
      return true
    }
    if (isDevices && method === 'GET') {
      send(res, 200, {
        devices: deps.entries.devices(owner.user).map(d => ({
          // v2 records seal the name: the hub hands the sealed bytes to the devices, which open them.
          device: d.record.devicePublicKey.toString('hex'), name: d.record.name, sealedName: d.record.sealedName?.toString('base64') ?? null, issuedAt: d.record.issuedAt,
          revoked: d.revocation == null ? null : { after: d.revocation.after, at: d.revocation.at }
        }))
      })
      return true
    }
  } catch (err) {
    if (err instanceof SyncError) throw syncRefusal(err)
    throw err
  }
  throw new HubError(405, 'method_not_allowed', `${method} ${path}`)
}
