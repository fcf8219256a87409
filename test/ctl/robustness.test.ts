// Bad clients against a real daemon: thousands of concurrent connections, then random bytes and
// random JSON from parallel clients for a while. Afterwards the daemon must still answer and the
// data written through the FUSE mount must read back intact, through the mount.
import assert from 'node:assert/strict'
import { createHash, randomBytes, randomInt } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { removeDirs, space } from '../helpers/mount.js'
import { CtlClient } from '../../src/ctl/client.js'
import { METHODS } from '../../src/ctl/protocol.js'
import { Raw, serveDrive, type Served } from './helpers.js'

const FUZZ_MS = Number(process.env.SPACE_TEST_FUZZ_MS ?? 15_000)
const CONNECTIONS = 3000
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

function randomJson (depth = 0): unknown {
  const pick = randomInt(depth > 3 ? 6 : 9)
  switch (pick) {
    case 0: return null
    case 1: return randomInt(2) === 1
    case 2: return randomInt(-1e9, 1e9) / (randomInt(3) + 1)
    case 3: return randomBytes(randomInt(40)).toString('latin1')
    case 4: return METHODS[randomInt(METHODS.length)]
    case 5: return ['jsonrpc', '2.0', 'id', 'method', 'params', 'token', 'protocol'][randomInt(7)]
    case 6: return Array.from({ length: randomInt(5) }, () => randomJson(depth + 1))
    default: {
      const o: Record<string, unknown> = {}
      for (let i = randomInt(6); i > 0; i--) o[String(randomJson(4))] = randomJson(depth + 1)
      return o
    }
  }
}

/** A request that is well-formed, with random method and params (half of them plausible). */
function randomRequest (): string {
  const method = randomInt(4) === 0 ? String(randomJson(3)) : METHODS[randomInt(METHODS.length)]
  const params = randomInt(2) === 0 ? randomJson(1) : { limit: randomJson(3), mountpoint: randomJson(3), name: randomJson(3), allow: randomJson(2), exit: randomJson(3) }
  return JSON.stringify({ jsonrpc: '2.0', id: randomInt(3) === 0 ? randomJson(2) : randomInt(1e6), method, params })
}

describe('a daemon under bad clients', () => {
  let d: Served
  let fuzzToken: string
  const files = new Map<string, string>()

  before(async () => {
    d = await serveDrive({ handshakeTimeoutMs: 2000 })
    for (let i = 0; i < 8; i++) {
      const body = randomBytes(i === 0 ? 4 * 1024 * 1024 : randomInt(1, 300_000))
      writeFileSync(d.m.path(`f${i}`), body)
      files.set(`f${i}`, sha(body))
    }
    // Everything but mount:write, keys:admin and tokens:admin: the fuzzer may read, not destroy.
    const r = space(['token', 'create', '--name', 'fuzz', '--allow', 'status:read,log:read,events:read,identity:read', ...d.args])
    assert.equal(r.status, 0, r.stderr)
    fuzzToken = r.stdout.trim()
  })
  after(async () => {
    await d?.m.cleanup()
    if (d !== undefined) removeDirs(d.dirs)
  })

  it(`serves ${CONNECTIONS} concurrent connections: each gets an answer or a busy error`, async () => {
    const outcomes = { hello: 0, busy: 0, refused: 0, other: 0 }
    const socks: Array<ReturnType<typeof createConnection>> = []
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      const s = createConnection(d.sock)
      socks.push(s)
      const r = await new Promise<keyof typeof outcomes>(resolve => {
        let buf = ''
        s.setEncoding('utf8')
        s.on('connect', () => s.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'hello', params: { protocol: 1, token: d.master } }) + '\n'))
        s.on('data', (x: string) => {
          buf += x
          if (!buf.includes('\n')) return
          const m = JSON.parse(buf.slice(0, buf.indexOf('\n')))
          resolve(m.result !== undefined ? 'hello' : m.error?.data?.code === 'ERR_BUSY' ? 'busy' : 'other')
        })
        // The kernel's listen backlog can refuse a connect outright (EAGAIN): dropped, not hung.
        s.on('error', () => resolve('refused'))
        s.on('close', () => resolve(buf === '' ? 'refused' : 'other'))
      })
      outcomes[r]++
    }))
    console.log(`# ${CONNECTIONS} connections: ${JSON.stringify(outcomes)}`)
    assert.equal(outcomes.other, 0)
    assert.equal(outcomes.hello + outcomes.busy + outcomes.refused, CONNECTIONS)
    assert.ok(outcomes.hello >= 256, 'the connection limit (512) is served')
    assert.ok(outcomes.busy > 0, 'connections past the limit are told so')
    for (const s of socks) s.destroy()
    // Once they are gone, the daemon takes new clients at once.
    await new Promise(resolve => setTimeout(resolve, 300))
    const c = await CtlClient.connect(d.sock, d.master)
    assert.equal((await c.call('status') as { mounted: boolean }).mounted, true)
    c.close()
  })

  it(`keeps serving the mount and clients through ${FUZZ_MS / 1000} s of random bytes and JSON`, async () => {
    const stopAt = Date.now() + FUZZ_MS
    const stats = { connections: 0, lines: 0, bytes: 0, answers: 0, forbidden: 0 }
    const worker = async (): Promise<void> => {
      while (Date.now() < stopAt) {
        let r: Raw
        try {
          r = await Raw.open(d.sock)
        } catch { continue }
        stats.connections++
        const mode = randomInt(6)
        if (mode >= 3) await r.hello(randomInt(4) === 0 ? String(randomJson(3)) : fuzzToken).catch(() => null)
        const chunks = randomInt(1, 30)
        for (let i = 0; i < chunks && !r.sock.destroyed; i++) {
          let data: Buffer
          switch (mode) {
            case 0: data = randomBytes(randomInt(1, 70_000)); break // raw bytes, newlines by chance
            case 1: data = Buffer.from(JSON.stringify(randomJson()) + '\n'); break
            case 2: data = randomInt(10) === 0 ? Buffer.alloc(1024 * 1024 + 100, 'x') : Buffer.from(randomRequest() + '\n'); break
            default: data = Buffer.from(randomRequest() + '\n')
          }
          stats.lines++
          stats.bytes += data.length
          r.send(data)
        }
        if (randomInt(3) === 0) r.send('{"jsonrpc":"2.0","id":1,"method":"sta') // and leave mid-message
        await new Promise(resolve => setTimeout(resolve, randomInt(0, 30)))
        stats.answers += r.messages.filter(m => m.result !== undefined || m.error !== undefined).length
        stats.forbidden += r.messages.filter(m => m.error?.data.code === 'ERR_FORBIDDEN').length
        r.close()
      }
    }
    // Meanwhile a program keeps using the mount; its files must stay right.
    const user = async (): Promise<number> => {
      let n = 0
      while (Date.now() < stopAt) {
        const body = randomBytes(randomInt(1, 200_000))
        await writeFile(d.m.path('live'), body) // async: the fuzzing clients share this event loop
        assert.equal(sha(await readFile(d.m.path('live'))), sha(body))
        n++
      }
      return n
    }
    const [, ops] = await Promise.all([Promise.all(Array.from({ length: 6 }, worker)), user()])
    console.log(`# fuzz ${FUZZ_MS} ms: ${JSON.stringify(stats)}, ${ops} write+read rounds through the mount`)
    assert.ok(stats.connections > 100)

    // The daemon answers, quickly.
    const c = await CtlClient.connect(d.sock, d.master)
    const times: number[] = []
    for (let i = 0; i < 50; i++) {
      const t = process.hrtime.bigint()
      const st = await c.call('status') as { mounted: boolean, pid: number }
      times.push(Number(process.hrtime.bigint() - t) / 1e6)
      assert.equal(st.mounted, true)
      assert.equal(st.pid, d.m.pid)
    }
    times.sort((a, b) => a - b)
    console.log(`# status latency after fuzzing: median ${times[25].toFixed(2)} ms, max ${times[49].toFixed(2)} ms`)
    // Nothing the fuzzer could not do happened: no unmount, no token.
    const toks = await c.call('tokens.list') as { tokens: Array<{ name: string }> }
    assert.deepEqual(toks.tokens.map(t => t.name).sort(), ['fuzz', 'master'])
    c.close()
    // The data is intact, read through the mount.
    for (const [name, h] of files) assert.equal(sha(readFileSync(d.m.path(name))), h, name)
    assert.equal(await d.m.stop(), 0, 'and it still stops cleanly')
  })
})
