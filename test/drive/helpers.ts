// Builders for drive tests: a small multi-commit store written through the real drive, and
// byte-level views of its journal and packs to damage them precisely.
import { mkdtempSync, readdirSync, readFileSync, existsSync, statSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Drive } from '../../src/drive/drive.js'
import type { FileNode } from '../../src/fs/tree/tree.js'

export interface Store { dir: string, key: Buffer, versions: string[] }

/** A store of three commits; after commit i, /a holds versions[i - 1] (and /keep is unchanged). */
export async function threeCommits (base?: string): Promise<Store> {
  const dir = join(base ?? mkdtempSync(join(tmpdir(), 'space-drive-')), 'data')
  const key = randomBytes(32)
  const versions = ['version 1', 'version 2 ' + 'x'.repeat(300_000), 'version 3 ' + 'y'.repeat(200_000)]
  const drive = await Drive.open(dir, key)
  const keep = await drive.tree.create('/keep', 0o644)
  await drive.tree.write(keep, Buffer.from('kept'), 0)
  let a: FileNode | null = null
  for (const v of versions) {
    a ??= await drive.tree.create('/a', 0o644)
    await drive.tree.truncate(a, 0)
    await drive.tree.write(a, Buffer.from(v), 0)
    await drive.commit()
  }
  await drive.close()
  return { dir, key, versions }
}

/** Journal frames: offset and length of each payload. */
export function frames (journal: Buffer): Array<{ offset: number, length: number }> {
  const out = []
  for (let off = 0; off + 8 <= journal.length;) {
    const length = journal.readUInt32BE(off)
    out.push({ offset: off, length })
    off += 8 + length
  }
  return out
}

/** Pack records: where each sealed block lies. */
export function packRecords (pack: Buffer): Array<{ start: number, data: number, length: number }> {
  const out = []
  for (let off = 9; off < pack.length;) {
    const c = pack[off + 1]
    const length = pack.readUInt32BE(off + 2 + c)
    out.push({ start: off, data: off + 2 + c + 4, length })
    off += 2 + c + 4 + length
  }
  return out
}

/** Every file under `dir` (relative path -> sha256), quarantine and lock left out. */
export function hashes (dir: string, sub = ''): Map<string, string> {
  const out = new Map<string, string>()
  if (!existsSync(join(dir, sub))) return out
  for (const name of readdirSync(join(dir, sub))) {
    const rel = sub === '' ? name : `${sub}/${name}`
    if (rel === 'quarantine' || rel === 'lock') continue
    if (statSync(join(dir, rel)).isDirectory()) for (const [k, v] of hashes(dir, rel)) out.set(k, v)
    else out.set(rel, createHash('sha256').update(readFileSync(join(dir, rel))).digest('hex'))
  }
  return out
}

/** The one quarantine directory recovery made (asserting there is exactly one). */
export function quarantineOf (dataDir: string): string {
  const names = readdirSync(join(dataDir, 'quarantine'))
  if (names.length !== 1) throw new Error(`expected one quarantine, found ${names.join(', ')}`)
  return join(dataDir, 'quarantine', names[0])
}
