// Conflict names: `name (conflict from DEVICE YYYY-MM-DD HHMMSS).ext`, in UTC, within NAME_MAX.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { conflictName } from '../../src/sync/merge-tree.js'

const ns = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n

test('a conflict name keeps the extension last and gives the losing version\'s time in UTC', () => {
  assert.equal(conflictName('report.txt', 'laptop', ns('2026-01-02T03:04:05.678Z'), false), 'report (conflict from laptop 2026-01-02 030405).txt')
  assert.equal(conflictName('archive.tar.gz', 'laptop', ns('2026-12-31T23:59:59Z'), false), 'archive.tar (conflict from laptop 2026-12-31 235959).gz')
})

test('names without an extension, dotfiles and folders get the mark at the end', () => {
  const t = ns('2026-01-02T03:04:05Z')
  assert.equal(conflictName('Makefile', 'pc', t, false), 'Makefile (conflict from pc 2026-01-02 030405)')
  assert.equal(conflictName('.bashrc', 'pc', t, false), '.bashrc (conflict from pc 2026-01-02 030405)')
  assert.equal(conflictName('photos.2025', 'pc', t, true), 'photos.2025 (conflict from pc 2026-01-02 030405)')
})

test('further copies are numbered, a slash in a device name cannot make a path, and a long name is cut to 255 bytes', () => {
  const t = ns('2026-01-02T03:04:05Z')
  assert.equal(conflictName('a.txt', 'pc', t, false, 2), 'a (conflict from pc 2026-01-02 030405 2).txt')
  assert.equal(conflictName('a.txt', 'my/pc', t, false), 'a (conflict from my-pc 2026-01-02 030405).txt')
  const long = conflictName('é'.repeat(127) + '.txt', 'pc', t, false)
  assert.ok(Buffer.byteLength(long) <= 255, String(Buffer.byteLength(long)))
  assert.ok(long.endsWith(' (conflict from pc 2026-01-02 030405).txt'))
})
