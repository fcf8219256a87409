// The hub's memory against the number of blocks it stores (issue 11 point 2: "the hub's memory
// does not grow with the number of blocks"): a real `space hub` on 127.0.0.1 whose block store
// is a generated store's packs (scripts/gen-store.mjs; the last pack copied, the others hard
// links, so the generated store stays as it was), its RSS once listening, after 10 s idle, peak
// and end while one user uploads and downloads --mib MiB of 128 KiB blocks, and 10 s idle after.
//   node scripts/bench/memory-hub.mjs [GENDIR ...] [--mib 64] [--json OUT]
// GENDIR: a directory gen-store.mjs made (GENDIR/data/packs); none, or "-": an empty store.
// Needs a build (npm run build).
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, copyFileSync, linkSync } from 'node:fs'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const dist = p => join(ROOT, 'dist', p)
const { startHub, register } = await import('./hub-process.mjs')
const { cidOf } = await import(dist('src/store/cid.js'))
const { HttpBlockTransport } = await import(dist('src/sync/transport-http.js'))
const { openReplicationDb } = await import(dist('src/hub/replication/blocks-db.js'))

const args = process.argv.slice(2)
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i < 0 ? dflt : (args[i + 1] ?? dflt) }
const mib = Number(opt('mib', 64))
const jsonOut = opt('json', null)
const stores = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')))
if (stores.length === 0) stores.push('-')
const BLOCK = 128 * 1024
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** A hub data directory whose block store holds the packs of `gen` (or nothing). */
function hubDir (gen) {
  const dir = mkdtempSync('/var/tmp/space-hubmem-')
  const blocks = join(dir, 'hub', 'blocks')
  mkdirSync(blocks, { recursive: true, mode: 0o700 })
  let stored = 0
  if (gen !== '-') {
    const packs = join(resolve(gen), 'data', 'packs')
    const ids = readdirSync(packs).filter(n => n.endsWith('.pack')).map(n => Number(n.slice(0, -5))).sort((a, b) => a - b)
    const last = ids.at(-1)
    for (const id of ids) {
      for (const ext of ['.pack', '.idx']) {
        const name = `${String(id).padStart(8, '0')}${ext}`
        // The hub appends to its last pack: a copy of that one, links to the others.
        if (id === last) copyFileSync(join(packs, name), join(blocks, name)); else linkSync(join(packs, name), join(blocks, name))
      }
      stored += readFileSync(join(packs, `${String(id).padStart(8, '0')}.idx`)).readUInt32BE(32)
    }
    const db = openReplicationDb(join(dir, 'hub'))
    db.prepare('INSERT INTO store_state (id, pack, offset) VALUES (1, ?, ?)').run(last, statSync(join(blocks, `${String(last).padStart(8, '0')}.pack`)).size)
    db.close()
  }
  return { dir, stored }
}

const rssOf = pid => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024)
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const out = { loadStart: load(), mib, rows: [] }
const n = mib * 1024 * 1024 / BLOCK
for (const gen of stores) {
  const { dir, stored } = hubDir(gen)
  try { execFileSync('bash', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']) } catch {}
  const t0 = performance.now()
  const hub = await startHub(join(dir, 'hub'))
  try {
    const r = { store: gen, storedBlocks: stored, startS: +((performance.now() - t0) / 1000).toFixed(2), rssStartMiB: rssOf(hub.pid) }
    await sleep(10_000)
    r.rssIdleMiB = rssOf(hub.pid)
    const creds = await register(hub.url, 'mem')
    const all = randomBytes(n * BLOCK)
    const blocks = Array.from({ length: n }, (_, i) => { const bytes = all.subarray(i * BLOCK, (i + 1) * BLOCK); return { cid: cidOf(bytes), bytes } })
    let peak = r.rssIdleMiB
    const timer = setInterval(() => { peak = Math.max(peak, rssOf(hub.pid)) }, 100)
    const t = new HttpBlockTransport(hub.url, creds)
    await t.put(blocks)
    let k = 0
    for await (const b of t.get(blocks.map(x => x.cid))) if (!b.cid.equals(blocks[k++].cid)) throw new Error('order')
    await t.close()
    clearInterval(timer)
    r.rssServingPeakMiB = Math.max(peak, rssOf(hub.pid))
    r.rssAfterMiB = rssOf(hub.pid)
    await sleep(10_000)
    r.rssIdleAfterMiB = rssOf(hub.pid)
    console.error(`hub over ${stored} blocks: started in ${r.startS} s, RSS ${r.rssStartMiB} MiB, ${r.rssIdleMiB} idle; ${mib} MiB up and down: peak ${r.rssServingPeakMiB}, then ${r.rssAfterMiB}, ${r.rssIdleAfterMiB} idle 10 s later`)
    out.rows.push(r)
  } finally {
    await hub.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
out.loadEnd = load()
if (jsonOut != null) writeFileSync(jsonOut, JSON.stringify(out) + '\n')
console.log(JSON.stringify(out))
