// Generates the small-files tree for scripts/bench.sh, deterministically from a seed:
//   node scripts/bench/mktree.mjs <outdir> <nfiles> [seed]
// Layout: <outdir>/aNN/bNN/fNNN.bin, 100 files per leaf folder, 10 leaf folders per top folder
// (10,000 files -> 10 x 10 x 100). Each file is 1-8 KiB (uniform) of pseudo-random bytes taken
// from an AES-256-CTR keystream keyed by sha256(seed), so the same seed gives the same bytes.
// Prints "<files> <bytes>" on stdout.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [outdir, nArg, seed = 'space-bench'] = process.argv.slice(2);
const n = Number(nArg);
if (!outdir || !Number.isInteger(n) || n < 1) {
  console.error('usage: mktree.mjs <outdir> <nfiles> [seed]');
  process.exit(2);
}

const key = createHash('sha256').update(seed).digest();
const stream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
const random = (len) => stream.update(Buffer.alloc(len));

const PER_LEAF = 100;
const LEAVES_PER_TOP = 10;
const pad = (i, w) => String(i).padStart(w, '0');

let bytes = 0;
for (let i = 0; i < n; i++) {
  const leaf = Math.floor(i / PER_LEAF);
  const dir = join(outdir, `a${pad(Math.floor(leaf / LEAVES_PER_TOP), 2)}`, `b${pad(leaf % LEAVES_PER_TOP, 2)}`);
  if (i % PER_LEAF === 0) mkdirSync(dir, { recursive: true });
  const size = 1024 + (random(4).readUInt32LE(0) % (7 * 1024 + 1)); // 1024..8192 bytes
  writeFileSync(join(dir, `f${pad(i % PER_LEAF, 3)}.bin`), random(size));
  bytes += size;
}
console.log(`${n} ${bytes}`);
