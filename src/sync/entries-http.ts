// The device side of the hub's entry API (src/hub/replication/entries-routes.ts): append this
// log's entries, long-poll for the others', record this device. Rides on the block transport's
// authenticated keep-alive session, so entries and blocks share one device token.
import type { EntryHub } from './engine.js'
import type { HttpBlockTransport } from './transport-http.js'
import { TransportError } from './transport-errors.js'
import * as cbor from '@ipld/dag-cbor'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

export class HttpEntryHub implements EntryHub {
  private readonly path: string
  private readonly groupPath: string
  /** False once the hub answered that it has no group route (an older hub): one entry per request. */
  private groups = true
  constructor (private readonly http: HttpBlockTransport, drive: Uint8Array) {
    this.path = `/sync/v1/drives/${hex(drive)}/entries`
    this.groupPath = `/sync/v1/drives/${hex(drive)}/entry-groups`
  }

  async append (entry: Uint8Array): Promise<void> {
    await this.http.call('POST', this.path, { body: Buffer.from(entry), headers: { 'content-type': 'application/vnd.ipld.dag-cbor' } })
  }

  /**
   * One log's next entries in one request, accepted by the hub as a whole (one durability check
   * of their blocks, one transaction) or refused as a whole. A hub without the route: one by one.
   */
  async appendGroup (entries: Uint8Array[]): Promise<void> {
    if (!this.groups || entries.length === 1) { for (const e of entries) await this.append(e); return }
    try {
      await this.http.call('POST', this.groupPath, { body: Buffer.from(cbor.encode(entries.map(e => new Uint8Array(e.buffer, e.byteOffset, e.byteLength)))), headers: { 'content-type': 'application/vnd.ipld.dag-cbor' } })
    } catch (err) {
      if (!(err instanceof TransportError) || err.code !== 'ERR_NOT_FOUND' || err.hubCode === 'sync_blocks_missing') throw err
      this.groups = false
      for (const e of entries) await this.append(e)
    }
  }

  async since (after: Record<string, number>, timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array[]> {
    const q = Object.entries(after).map(([d, s]) => `${d}:${s}`).join(',')
    const body = await this.http.call('GET', `${this.path}?after=${q}&wait=${timeoutMs}`, { signal })
    let v: { entries?: unknown }
    try { v = JSON.parse(body.toString('utf8')) } catch { throw new TransportError('ERR_HUB', 'hub answered entries with something that is not JSON') }
    if (!Array.isArray(v.entries) || !v.entries.every(e => typeof e === 'string')) throw new TransportError('ERR_HUB', 'hub answered entries without an entry list')
    return (v.entries as string[]).map(e => Buffer.from(e, 'base64'))
  }

  /** The hub's newest entry of each of this drive's logs (device key hex -> seq); no entries are sent. */
  async heads (devices: string[]): Promise<Map<string, number>> {
    if (devices.length === 0) return new Map()
    const q = devices.map(d => `${d}:999999999999999`).join(',')
    const v = JSON.parse((await this.http.call('GET', `${this.path}?after=${q}&wait=0`)).toString('utf8')) as { heads?: Array<{ dev: string, seq: number }> }
    return new Map((v.heads ?? []).map(h => [h.dev, h.seq]))
  }

  async revocations (): Promise<Uint8Array[]> { return await this.http.revocations() }

  async putDevice (record: Uint8Array): Promise<void> {
    await this.http.call('PUT', '/sync/v1/devices', { body: Buffer.from(record), headers: { 'content-type': 'application/vnd.ipld.dag-cbor' } })
  }

  async devices (): Promise<unknown> {
    return JSON.parse((await this.http.call('GET', '/sync/v1/devices')).toString('utf8'))
  }

  async revoke (record: Uint8Array): Promise<void> {
    await this.http.call('POST', '/sync/v1/revocations', { body: Buffer.from(record), headers: { 'content-type': 'application/vnd.ipld.dag-cbor' } })
  }
}
