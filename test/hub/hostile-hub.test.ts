// A hostile hub cannot weaken the passphrase: a fake hub (a real HTTP server on 127.0.0.1 started
// here) that serves a vault header with weak scrypt parameters is refused before anything is
// derived (so it never receives a vsk to check guesses against); parameters other than those of
// this machine's last backup are refused; plain http:// off loopback needs --insecure-http.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { isKeysError } from '../../src/keys/errors.js'
import { BoxPurpose, encodeBoxHeader } from '../../src/keys/passbox.js'
import { VaultClient } from '../../src/keys/vault-client.js'
import { API, b64u, fromB64u } from '../../src/keys/vault-protocol.js'
import { cli, startHub, tempDir, type HubProcess } from '../keys/helpers.js'

const root = tempDir('space-hostile-')
const servers: Server[] = []
const hubs: HubProcess[] = []
after(async () => {
  for (const s of servers) s.close()
  await Promise.all(hubs.map(async h => await h.stop()))
  rmSync(root, { recursive: true, force: true })
})
let n = 0
const dir = (p = 'c'): string => join(root, `${p}${n++}`)
const PASS = 'a long backup passphrase'
const INSECURE = ['--keystore', 'file', '--insecure-no-passphrase']
// Never reach a daemon someone else runs on the default socket.
const noDaemon = (): string[] => ['--socket', join(root, `none${n++}.sock`)]

interface FakeHub { url: string, requests: string[] }

/** Answers lookups itself (`lookup`), and forwards everything else to `upstream` if given. */
async function fakeHub (lookup: (username: string) => Promise<unknown>, upstream?: string): Promise<FakeHub> {
  const requests: string[] = []
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`)
    void (async () => {
      if (req.method === 'GET' && req.url?.startsWith(API.users + '/') === true) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(await lookup(decodeURIComponent(req.url.slice(API.users.length + 1)))))
        return
      }
      if (upstream === undefined) { res.writeHead(404); res.end('{"error":"not_found","message":"fake"}'); return }
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      const r = await fetch(upstream + req.url, { method: req.method, headers: { 'content-type': 'application/json' }, body: chunks.length > 0 ? Buffer.concat(chunks) : undefined })
      res.writeHead(r.status, { 'content-type': 'application/json' })
      res.end(await r.text())
    })()
  })
  servers.push(server)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}

const weakHeader = (log2N: number, r: number, p: number): string =>
  b64u(encodeBoxHeader({ purpose: BoxPurpose.Vault, params: { N: 2 ** log2N, r, p }, salt: Buffer.alloc(16, 7), noPassphrase: false }))

describe('a hostile hub', () => {
  for (const [what, log2N, r, p] of [['N=2', 1, 8, 1], ['r=1', 10, 1, 1], ['N=2, r=1', 1, 1, 1]] as const) {
    it(`serving weak scrypt parameters (${what}) gets a refusal before anything is derived or sent`, async () => {
      const fake = await fakeHub(async () => ({ userId: b64u(Buffer.alloc(16, 1)), publicKey: b64u(Buffer.alloc(32, 2)), vaultHeader: weakHeader(log2N, r, p) }))
      const d = dir()
      const res = await cli(['recover-keys', 'alice', '--hub', fake.url, '--config-dir', d, '--passphrase-stdin', ...noDaemon(), ...INSECURE], { input: PASS + '\n' })
      assert.equal(res.code, 34, res.stderr)
      assert.match(res.stderr, /refusing key derivation parameters weaker than this version's floor \(scrypt N=2\^\d+ r=\d+ p=1 < scrypt N=2\^10 r=8 p=1\)/)
      assert.deepEqual(fake.requests, ['GET /v1/users/alice'], 'only the lookup: no vsk was derived and sent')
      const t = await cli(['test-passphrase', 'alice', '--hub', fake.url, '--config-dir', d, '--passphrase-stdin'], { input: PASS + '\n' })
      assert.equal(t.code, 34, t.stderr)
    })
  }

  it('serving other parameters than this machine\'s backup was made with is refused, though above the floor', async () => {
    const h = await startHub(dir('hub'))
    hubs.push(h)
    const a = dir()
    assert.equal((await cli(['init', '--config-dir', a, ...INSECURE])).code, 0)
    const b = await cli(['backup-keys', '--config-dir', a, '--hub', h.url, '--username', 'bob', '--passphrase-stdin', ...noDaemon()], { input: PASS + '\n' })
    assert.equal(b.code, 0, b.stderr)
    const remembered = JSON.parse(readFileSync(join(a, 'identity.json'), 'utf8')).vault.kdf
    assert.deepEqual(remembered, { N: 1024, r: 8, p: 1 }, 'the backup\'s parameters are in the local config')
    // The real hub's answer with N doubled: stronger than the floor, but not what we sealed with.
    const fake = await fakeHub(async (u) => {
      const info = await (await fetch(`${h.url}${API.users}/${u}`)).json() as { vaultHeader: string }
      const header = fromB64u(info.vaultHeader)!
      header[3] = 11
      return { ...info, vaultHeader: b64u(header) }
    }, h.url)
    const t = await cli(['test-passphrase', 'bob', '--hub', fake.url, '--config-dir', a, '--passphrase-stdin'], { input: PASS + '\n' })
    assert.equal(t.code, 35, t.stderr)
    assert.match(t.stderr, /other key derivation parameters \(scrypt N=2\^11 r=8 p=1\) than the backup made from this machine \(scrypt N=2\^10 r=8 p=1\); refused/)
    assert.deepEqual(fake.requests, ['GET /v1/users/bob'])
    const ok = await cli(['test-passphrase', 'bob', '--hub', h.url, '--config-dir', a, '--passphrase-stdin'], { input: PASS + '\n' })
    assert.equal(ok.code, 0, ok.stderr)
  })
})

describe('plain http hubs', () => {
  it('refuses http:// to a host that is not loopback unless --insecure-http, before any request', async () => {
    const d = dir()
    const r = await cli(['recover-keys', 'alice', '--hub', 'http://192.0.2.1:7470', '--config-dir', d, '--passphrase-stdin', ...noDaemon(), ...INSECURE], { input: PASS + '\n' })
    assert.equal(r.code, 36, r.stderr)
    assert.match(r.stderr, /refusing plain http:\/\/ to hub http:\/\/192\.0\.2\.1:7470, which is not on this machine: use https:\/\/, or pass --insecure-http/)
    assert.throws(() => new VaultClient('http://hub.example.org'), (e: unknown) => isKeysError(e, 'ERR_INSECURE_HUB'))
    for (const ok of ['https://hub.example.org', 'http://127.0.0.1:7470', 'http://127.8.9.10', 'http://localhost:1', 'http://[::1]:7470']) assert.doesNotThrow(() => new VaultClient(ok), ok)
    assert.doesNotThrow(() => new VaultClient('http://hub.example.org', { insecureHttp: true }))
  })
})
