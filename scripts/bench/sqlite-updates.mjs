// Generates the SQLite random-update workload for scripts/bench.sh, deterministically from a seed:
//   node scripts/bench/sqlite-updates.mjs <out.sql> <rows> <transactions> [seed]
// <out.sql> holds <transactions> transactions (BEGIN ... COMMIT) of 10 updates each, every
// update setting one row of t(id 1..rows) to 'u<txn>.<n>'; row ids come from an AES-256-CTR
// keystream keyed by sha256(seed), so the same seed gives the same file. Prints the number of
// distinct rows updated: after the run exactly that many rows have a value starting with 'u'.
import { createCipheriv, createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const PER_TXN = 10;
const [out, rowsArg, txnsArg, seed = 'space-bench-sqlite'] = process.argv.slice(2);
const rows = Number(rowsArg);
const txns = Number(txnsArg);
if (!out || !Number.isInteger(rows) || rows < 1 || !Number.isInteger(txns) || txns < 1) {
  console.error('usage: sqlite-updates.mjs <out.sql> <rows> <transactions> [seed]');
  process.exit(2);
}

const key = createHash('sha256').update(seed).digest();
const ids = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(txns * PER_TXN * 4));
const touched = new Set();
const lines = [];
for (let t = 0; t < txns; t++) {
  lines.push('BEGIN;');
  for (let n = 0; n < PER_TXN; n++) {
    const id = 1 + (ids.readUInt32LE((t * PER_TXN + n) * 4) % rows);
    touched.add(id);
    lines.push(`UPDATE t SET v = 'u${t}.${n}' WHERE id = ${id};`);
  }
  lines.push('COMMIT;');
}
writeFileSync(out, lines.join('\n') + '\n');
console.log(touched.size);
