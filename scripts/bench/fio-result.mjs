// Reads one fio --output-format=json result for scripts/bench.sh:
//   node scripts/bench/fio-result.mjs <fio.json>
// Prints "<read MiB/s> <write MiB/s> <read ops> <write ops>" of the first job (the bench runs
// fio with --group_reporting, so that is the sum over all jobs). Exits 1 if fio reported an
// error (e.g. a crc32c verify failure) or the file holds no job.
import { readFileSync } from 'node:fs';

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: fio-result.mjs <fio.json>');
  process.exit(2);
}
// fio can print warnings before the JSON when --output is not used; skip to the first brace.
const text = readFileSync(file, 'utf8');
const start = text.indexOf('{');
const job = start < 0 ? undefined : JSON.parse(text.slice(start)).jobs?.[0];
if (!job) {
  console.error(`${file}: no fio job in the output`);
  process.exit(1);
}
if (job.error) {
  console.error(`${file}: fio job error ${job.error}`);
  process.exit(1);
}
const mib = (dir) => (job[dir].bw_bytes / 1048576).toFixed(2);
console.log(`${mib('read')} ${mib('write')} ${job.read.total_ios} ${job.write.total_ios}`);
