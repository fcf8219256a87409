// Fixtures for the replication tests: a registered user (identity key), certified devices, a
// device token by raw HTTP, random blocks, and hand-made CAR bodies.
import { randomBytes } from 'node:crypto'
import { ed25519FromSeed, ed25519Sign, type RawKeyPair } from '../../src/keys/ed25519.js'
import { certifyDevice, newDeviceKey, type DeviceCertificate } from '../../src/keys/identity.js'
import { API, b64u, fromB64u, registerMessage } from '../../src/keys/vault-protocol.js'
import { cidOf } from '../../src/store/cid.js'
import { carHeader, sectionPrefix, type Block } from '../../src/sync/transport-car.js'
import { HttpBlockTransport, type HttpTransportOptions } from '../../src/sync/transport-http.js'
import { certificateToJson, deviceAuthMessage, SYNC_API } from '../../src/sync/transport-protocol.js'

export interface User { userId: Buffer, identity: RawKeyPair, username: string }
export interface Device { deviceKey: RawKeyPair, certificate: DeviceCertificate }

export async function registerUser (hub: string, username: string): Promise<User> {
  const identity = ed25519FromSeed(randomBytes(32))
  const timestamp = Date.now()
  const signature = ed25519Sign(identity.privateKey, registerMessage(username, identity.publicKey, timestamp))
  const res = await fetch(hub + API.users, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, publicKey: b64u(identity.publicKey), timestamp, signature: b64u(signature) }) })
  if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${await res.text()}`)
  const { userId } = await res.json() as { userId: string }
  return { userId: fromB64u(userId, 16)!, identity, username }
}

export function newDevice (identity: RawKeyPair): Device {
  const deviceKey = newDeviceKey()
  return { deviceKey, certificate: certifyDevice(identity, deviceKey.publicKey) }
}

export const transport = (hub: string, user: User, device: Device, opts: HttpTransportOptions = {}): HttpBlockTransport =>
  new HttpBlockTransport(hub, { userId: user.userId, ...device }, opts)

export const post = async (hub: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
  await fetch(hub + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

/** The token request a device would send, for tests that replay or tamper with it. */
export async function tokenRequest (hub: string, user: User, device: Device): Promise<Record<string, unknown>> {
  const c = await (await post(hub, SYNC_API.challenge, { userId: b64u(user.userId), devicePublicKey: b64u(device.deviceKey.publicKey) })).json() as { challengeId: string, challenge: string }
  const sig = ed25519Sign(device.deviceKey.privateKey, deviceAuthMessage(fromB64u(c.challengeId)!, user.userId, device.deviceKey.publicKey, fromB64u(c.challenge)!))
  return { challengeId: c.challengeId, signature: b64u(sig), certificate: certificateToJson(device.certificate) }
}

export async function deviceToken (hub: string, user: User, device: Device): Promise<string> {
  const res = await post(hub, SYNC_API.token, await tokenRequest(hub, user, device))
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { token: string }).token
}

export function randomBlocks (n: number, size = 128 * 1024): Block[] {
  const all = randomBytes(n * size)
  return Array.from({ length: n }, (_, i) => {
    const bytes = all.subarray(i * size, (i + 1) * size)
    return { cid: cidOf(bytes), bytes }
  })
}

/** A CAR v1 body of `blocks` as given (a test may pair a CID with other bytes). */
export function carOf (blocks: Block[]): Buffer {
  return Buffer.concat([carHeader([]), ...blocks.flatMap(b => [sectionPrefix(b.cid, b.bytes.length), Buffer.from(b.bytes)])])
}
