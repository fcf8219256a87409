// A real `space hub` on 127.0.0.1 for the hub benches (hub-blocks.mjs, memory-hub.mjs), and a
// fresh user registered on it with a certified device key, as a device does it. Needs a build.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { ed25519FromSeed, ed25519Sign } from '../../dist/src/keys/ed25519.js'
import { certifyDevice, newDeviceKey } from '../../dist/src/keys/identity.js'
import { API, b64u, fromB64u, registerMessage } from '../../dist/src/keys/vault-protocol.js'

const CLI = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'dist/src/cli/main.js')

/** Starts the hub on DATADIR (HUB_NODE_ARGS: node options for it); resolves once it listens. */
export async function startHub (dataDir) {
  const child = spawn(process.execPath, [...(process.env.HUB_NODE_ARGS ?? '').split(' ').filter(Boolean), CLI, 'hub', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', l => { const m = /listening on (http:\/\/\S+)/.exec(l); if (m) resolve(m[1]) })
    child.once('exit', c => reject(new Error(`hub exited ${c}`)))
  })
  return { url, pid: child.pid, stop: async () => { child.kill('SIGTERM'); await new Promise(r => child.once('exit', r)) } }
}

/** Registers a new user on the hub at URL; its user id, a device key and the device's certificate. */
export async function register (url, prefix = 'bench') {
  const identity = ed25519FromSeed(randomBytes(32))
  const username = `${prefix}${Date.now() % 1e6}`
  const timestamp = Date.now()
  const signature = ed25519Sign(identity.privateKey, registerMessage(username, identity.publicKey, timestamp))
  const res = await fetch(url + API.users, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, publicKey: b64u(identity.publicKey), timestamp, signature: b64u(signature) }) })
  const { userId } = await res.json()
  const deviceKey = newDeviceKey()
  return { userId: fromB64u(userId, 16), deviceKey, certificate: certifyDevice(identity, deviceKey.publicKey) }
}
