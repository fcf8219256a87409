// Store bytes appended per random 4 KiB write at steady state, without a disk or FUSE (the tree on
// its memory store, the real seal, patch, fold and block map code): FILES files of 256 MiB laid
// out whole, then random 4 KiB writes spread over them, a commit after every W writes (fsync/32
// over four jobs commits every ~4-18 writes here, depending on how fast commits are); the bytes
// are counted over writes WARM .. WARM + COUNT (docs/performance.md, "Random I/O").
//   node scripts/bench/store-per-write.mjs [REPO_ROOT]   (env W=8 FILES=4 WARM=60000 COUNT=60000)
import { randomBytes } from 'node:crypto'
const root = process.argv[2] ?? new URL('../..', import.meta.url).pathname
const { memoryTree } = await import(root + '/dist/test/helpers/memory-store.js')
const B = 131072, BLOCKS = 2048
const W = Number(process.env.W ?? 8), FILES = Number(process.env.FILES ?? 4)
const WARM = Number(process.env.WARM ?? 60000), COUNT = Number(process.env.COUNT ?? 60000)
const { tree, store } = memoryTree()
const files = []
const chunk = randomBytes(B)
for (let j = 0; j < FILES; j++) {
  const f = await tree.create(`/fio.${j}`, 0o644)
  for (let i = 0; i < BLOCKS; i++) await tree.write(f, chunk, i * B)
  files.push(f)
}
await tree.commit()
const page = randomBytes(4096)
let seed = 12345
const rnd = n => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return Math.floor((seed / 2 ** 32) * n) }
let writes = 0, b0 = 0, o0 = 0, c0 = null
while (writes < WARM + COUNT) {
  for (let k = 0; k < W; k++) { await tree.write(files[rnd(FILES)], page, rnd(BLOCKS * 32) * 4096); writes++ }
  await tree.commit()
  if (writes >= WARM && c0 == null) { b0 = store.bytes; o0 = store.size; c0 = process.cpuUsage() }
}
const c = process.cpuUsage(c0)
let patches = 0; for (const f of files) for (const r of f.blocks.values()) patches += r.patches?.length ?? 0
const shape = files[0].mapTree?.shape?.leaf ?? 16
console.log(`W=${W} FILES=${FILES}: ${((store.bytes - b0) / COUNT / 1024).toFixed(1)} KiB appended per write, ${((store.size - o0) / COUNT).toFixed(2)} objects per write, ${((c.user + c.system) / COUNT).toFixed(0)} us CPU per write (writes and commits); ${(patches / FILES / BLOCKS).toFixed(1)} patches per block, leaves of ${shape} blocks`)
