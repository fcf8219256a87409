// What a commit costs after 32 random 4 KiB writes into a 256 MiB file, on the tree's memory
// store (no disk, no FUSE): commit time and the bytes and objects of the block map it seals,
// after the file has collected ~1, ~2.6 and ~3 patches per block (docs/performance.md, "Block map
// tree"). Runs a build: node scripts/bench/block-map-commit.mjs [REPO_ROOT] (default: this one;
// another checkout's root to compare builds side by side). BM_WRITES=N: N writes per commit
// instead of 32 (the fsync/32 row commits every ~8-18 writes); BM_WARM="0 256 256": the rounds of
// writes before each measured set (default: ~0, ~4, ~8 writes per block).
import { randomBytes } from 'node:crypto'
const root = process.argv[2] ?? new URL('../..', import.meta.url).pathname
const { memoryTree } = await import(root + '/dist/test/helpers/memory-store.js')
const B = 131072, BLOCKS = 2048
const { tree, store } = memoryTree()
const f = await tree.create('/vm', 0o644)
const chunk = randomBytes(B)
for (let i = 0; i < BLOCKS; i++) await tree.write(f, chunk, i * B)
await tree.commit()
let seed = 1
const rnd = n => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
const page = randomBytes(4096)
const W = Number(process.env.BM_WRITES ?? 32)
const round = async () => { for (let k = 0; k < W; k++) await tree.write(f, page, rnd(BLOCKS * 32) * 4096) }
const seen = new Set()
const mark = () => { const fresh = f.mapTree != null ? [f.mapTree.root, ...f.mapTree.nodes.values()] : [f.blockMap]; for (const c of fresh) seen.add(c.toString()) }
const warms = process.env.BM_WARM != null ? process.env.BM_WARM.split(' ').map(Number) : [0, 4 * BLOCKS / W, 4 * BLOCKS / W]
for (const warm of warms) { // 0, then ~4 and ~8 writes per block (patch lists grow)
  for (let r = 0; r < warm; r++) { await round(); await tree.commit() }
  mark()
  const times = []; const cpu = []; let bytes = 0; let mapBytes = 0; let mapObjs = 0
  for (let r = 0; r < 60; r++) {
    await round()
    const b0 = store.bytes, t0 = process.hrtime.bigint(), c0 = process.cpuUsage()
    await tree.commit()
    const c = process.cpuUsage(c0)
    times.push(Number(process.hrtime.bigint() - t0) / 1e6); cpu.push((c.user + c.system) / 1000); bytes += store.bytes - b0
    const fresh = f.mapTree != null ? [f.mapTree.root, ...f.mapTree.nodes.values()] : [f.blockMap]
    for (const c of fresh) { const k = c.toString(); if (!seen.has(k)) { seen.add(k); mapObjs++; mapBytes += (await store.get(c)).length } }
  }
  times.sort((a, b) => a - b); cpu.sort((a, b) => a - b)
  let patches = 0; for (const r of f.blocks.values()) patches += r.patches?.length ?? 0
  console.log(`patches/block ${(patches / BLOCKS).toFixed(1)}: commit median ${times[30].toFixed(2)} ms (CPU ${cpu[30].toFixed(2)} ms), p90 ${times[54].toFixed(2)} ms; appended per commit ${(bytes / 60 / 1024).toFixed(1)} KiB (${(bytes / 60 / W / 1024).toFixed(1)} KiB per 4 KiB write), of which block map ${(mapBytes / 60 / 1024).toFixed(1)} KiB in ${(mapObjs / 60).toFixed(1)} objects`)
}
