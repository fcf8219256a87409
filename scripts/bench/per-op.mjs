// Latency of single 4 KiB operations inside a big file, one at a time, O_DIRECT (so every op
// reaches the file system), for docs/performance.md ("Random I/O", per op):
//   node scripts/bench/per-op.mjs <file> <phase>
// phases: layout (write the file, 256 MiB), then, each over one page of every 128 KiB block in
// a shuffled order: cold-read (page 3: the first read of each block), warm-read (page 17: a block
// read before), write (page 9, a whole 4 KiB page), small-write (100 bytes inside page 21),
// read-written (page 9 again). Prints the median and mean microseconds per op.
import { openSync, closeSync, readSync, writeSync, fsyncSync, constants as FS } from 'node:fs'

const [file, phase] = process.argv.slice(2)
const SIZE = Number(process.env.PER_OP_MB ?? 256) * 1024 * 1024
const B = 128 * 1024
const blocks = SIZE / B
const order = [...Array(blocks).keys()]
let x = 12345
for (let i = order.length - 1; i > 0; i--) { x = (x * 1103515245 + 12345) >>> 0; const j = x % (i + 1); [order[i], order[j]] = [order[j], order[i]] }
// Page-aligned memory for O_DIRECT: a slice of a larger buffer at a 4 KiB boundary.
const raw = Buffer.alloc(B + 4096)
const off = (4096 - (raw.byteOffset % 4096)) % 4096
const buf = raw.subarray(off, off + B)

if (phase === 'layout') {
  const fd = openSync(file, 'w')
  for (let i = 0; i < blocks; i++) { buf.fill(i & 0xff); writeSync(fd, buf, 0, B, i * B) }
  fsyncSync(fd)
  closeSync(fd)
  process.exit(0)
}
const page = { 'cold-read': 3, 'warm-read': 17, write: 9, 'small-write': 21, 'read-written': 9 }[phase]
if (page == null) { console.error('unknown phase'); process.exit(2) }
const writing = phase === 'write' || phase === 'small-write'
const fd = openSync(file, (writing ? FS.O_RDWR : FS.O_RDONLY) | (phase === 'small-write' ? 0 : FS.O_DIRECT))
const times = []
for (const i of order) {
  const at = i * B + page * 4096
  const t = process.hrtime.bigint()
  if (phase === 'write') writeSync(fd, buf, 0, 4096, at)
  else if (phase === 'small-write') writeSync(fd, buf, 0, 100, at + 1000)
  else readSync(fd, buf, 0, 4096, at)
  times.push(Number(process.hrtime.bigint() - t) / 1000)
}
if (writing) fsyncSync(fd)
closeSync(fd)
times.sort((a, b) => a - b)
const mean = times.reduce((a, b) => a + b, 0) / times.length
console.log(`${phase}: ${times.length} ops, median ${times[times.length >> 1].toFixed(1)} us, mean ${mean.toFixed(1)} us`)
