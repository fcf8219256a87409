// Block transfer through a real `space hub` process on 127.0.0.1: upload and download throughput
// of N MiB of 128 KiB random blocks (default 512), with the hub's CPU seconds and peak RSS per
// phase. Run after a build: node scripts/bench/hub-blocks.mjs [MiB] [runs]
// Upload: CAR PUT batches of ~8 MiB, 4 in flight. Download: CAR batches of 64 blocks, 4 in
// flight; and one keep-alive GET /ipfs/{cid}?format=raw per block, 8 sockets.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cidOf } from '../../dist/src/store/cid.js'
import { HttpBlockTransport } from '../../dist/src/sync/transport-http.js'
import { PackStore } from '../../dist/src/store/pack-store.js'
import { startHub, register } from './hub-process.mjs'

const MIB = Number(process.argv[2] ?? 512)
const RUNS = Number(process.argv[3] ?? 1)
const BLOCK = 128 * 1024
const TICK = 100 // USER_HZ on Linux

function procStats (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpu = (Number(f[11]) + Number(f[12])) / TICK
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024
  return { cpu, hwm }
}

const mbps = (bytes, s) => (bytes / 1e6 / s).toFixed(0)

const n = MIB * 1024 * 1024 / BLOCK
const all = randomBytes(n * BLOCK)
const blocks = Array.from({ length: n }, (_, i) => { const bytes = all.subarray(i * BLOCK, (i + 1) * BLOCK); return { cid: cidOf(bytes), bytes } })
const cids = blocks.map(b => b.cid)
const bytes = n * BLOCK

console.log(`${MIB} MiB as ${n} blocks of 128 KiB; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`)
for (let run = 1; run <= RUNS; run++) {
  const dir = mkdtempSync(join(tmpdir(), 'space-hubbench-'))
  const hub = await startHub(join(dir, 'hub'))
  try {
    const creds = await register(hub.url)
    const rows = []
    const phase = async (name, fn) => {
      const before = procStats(hub.pid)
      const cpu0 = process.cpuUsage()
      const t0 = process.hrtime.bigint()
      await fn()
      const s = Number(process.hrtime.bigint() - t0) / 1e9
      const cpu = process.cpuUsage(cpu0)
      const after = procStats(hub.pid)
      rows.push({ run, phase: name, MB_s: mbps(bytes, s), seconds: s.toFixed(2), hub_cpu_s: (after.cpu - before.cpu).toFixed(2), hub_peak_rss_MiB: (after.hwm / 2 ** 20).toFixed(0), device_cpu_s: ((cpu.user + cpu.system) / 1e6).toFixed(2) })
    }
    const t = new HttpBlockTransport(hub.url, creds)
    await phase('missing (4096 CIDs)', async () => { if ((await t.missing(cids)).length !== n) throw new Error('missing') })
    rows[rows.length - 1].MB_s = '-'
    await phase('upload CAR PUT 8 MiB x4', async () => { await t.put(blocks) })
    await phase('download CAR batch x4', async () => { let k = 0; for await (const b of t.get(cids)) if (!b.cid.equals(cids[k++])) throw new Error('order') })
    const raw = new HttpBlockTransport(hub.url, creds, { getMode: 'raw' })
    await phase('download GET raw, 8 sockets', async () => { let k = 0; for await (const b of raw.get(cids)) if (!b.cid.equals(cids[k++])) throw new Error('order') })
    await Promise.all([t.close(), raw.close()])
    // The disk's own ceiling for the upload: the pack store alone, in this process, 8 MiB
    // batches each made durable (what the hub does per PUT, without group commit).
    const storeDir = join(dir, 'store-alone')
    const store = await PackStore.open(storeDir, null)
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i += 64) {
      for (const b of blocks.slice(i, i + 64)) store.putWithCid(b.cid, b.bytes)
      await store.sync()
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9
    await store.close()
    rows.push({ run, phase: 'pack store alone, sync per 8 MiB', MB_s: mbps(bytes, s), seconds: s.toFixed(2), hub_cpu_s: '-', hub_peak_rss_MiB: '-', device_cpu_s: '-' })
    console.table(rows)
  } finally {
    await hub.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
