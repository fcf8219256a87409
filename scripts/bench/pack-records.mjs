// Counts the records of a store's packs by kind of content, for the random-I/O analysis in
// docs/performance.md ("Random I/O"):
//   node scripts/bench/pack-records.mjs <data-dir> [from-pack from-offset]
//   node scripts/bench/pack-records.mjs <data-dir> --end   (prints "pack offset" of the last record's end)
// Without opening anything (no key needed) it walks the record headers of packs/NNNNNNNN.pack
// (docs/format.md, "Pack files") from the given position (default: the start) and prints, per
// sealed length class, the number of records and their bytes. Full content blocks are 131,597
// bytes sealed in v2 (128 KiB in 32 segments of 4096 + 16, and 13) and 131,102 in v1; a v2 patch of
// k segments is 13 + 4112 k bytes; block maps and directory nodes are the other classes.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [dir, fromPackArg, fromOffArg] = process.argv.slice(2);
if (!dir) {
  console.error('usage: pack-records.mjs <data-dir> [from-pack from-offset]');
  process.exit(2);
}
const endOnly = fromPackArg === '--end';
const fromPack = endOnly ? 0 : Number(fromPackArg ?? 0);
const fromOff = endOnly ? 9 : Number(fromOffArg ?? 9);
// A pack's file size is not its logical end: O_DIRECT appends leave zeros up to a page.
let end = [0, 9];
const FULL = 131072 + 13 + 32 * 16;
const FULL_V1 = 131072 + 30;
const classes = new Map();
const add = (name, len) => {
  const c = classes.get(name) ?? { n: 0, bytes: 0 };
  c.n++; c.bytes += len;
  classes.set(name, c);
};
const head = Buffer.alloc(2 + 255 + 4);
for (const name of readdirSync(join(dir, 'packs')).filter(n => n.endsWith('.pack')).sort()) {
  const num = Number(name.slice(0, -5));
  if (num < fromPack) continue;
  const path = join(dir, 'packs', name);
  const size = statSync(path).size;
  const fd = openSync(path, 'r');
  let pos = num === fromPack ? Math.max(9, fromOff) : 9;
  while (pos + 2 <= size) {
    readSync(fd, head, 0, head.length, pos);
    if (head[0] !== 1) break; // zeros past the logical end (O_DIRECT page tail)
    const c = head[1];
    const n = head.readUInt32BE(2 + c);
    const rec = 6 + c + n;
    const patch = n < FULL && (n - 13) % 4112 === 0 && n > 13 ? (n - 13) / 4112 : 0;
    const kind = n === FULL || n === FULL_V1 ? 'content block, full (128 KiB)' : patch > 0 ? `patch of ${patch} segment${patch > 1 ? 's' : ''} (or a node of that size)` : n > FULL ? 'larger than a block' : n >= 65536 ? '64-128 KiB (block map / last block)' : n >= 4096 ? '4-64 KiB' : 'under 4 KiB';
    add(kind, rec);
    pos += rec;
    end = [num, pos];
  }
  closeSync(fd);
}
if (endOnly) {
  console.log(`${end[0]} ${end[1]}`);
  process.exit(0);
}
let total = 0;
for (const c of classes.values()) total += c.bytes;
for (const [k, c] of [...classes.entries()].sort((a, b) => b[1].bytes - a[1].bytes)) {
  console.log(`${k}: ${c.n} records, ${(c.bytes / 1048576).toFixed(1)} MiB (${(100 * c.bytes / total).toFixed(1)}%)`);
}
console.log(`total: ${(total / 1048576).toFixed(1)} MiB`);
