// Log lines and error messages name nodes by id or inode, never by path, unless the debug option
// (`--debug-log-paths`, logOptions.paths) asks for paths.
import type { CID } from 'multiformats/cid'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { logOptions } from '../../src/fs/tree/nodes.js'
import { memoryTree } from '../helpers/memory-store.js'
import type { FileNode } from '../../src/fs/tree/tree.js'

test('a damaged block is logged by file id by default and by path only with the debug option', async () => {
  for (const paths of [false, true]) {
    const lines: string[] = []
    const { tree: first, store, sink } = memoryTree()
    await first.mkdir('/secret-folder', 0o755)
    const written = await first.create('/secret-folder/private-name.txt', 0o644)
    await first.write(written, Buffer.alloc(200_000, 7), 0)
    await first.commit()
    store.corrupt(written.blocks!.get(0)! as CID)
    const tree = sink.reopen(store, { log: l => lines.push(l) })
    const f = await tree.lookup('/secret-folder/private-name.txt') as FileNode
    logOptions.paths = paths
    try {
      await assert.rejects(tree.read(f, Buffer.alloc(4096), 4096, 0), { code: 'ERR_INTEGRITY' })
    } finally {
      logOptions.paths = false
    }
    const all = lines.join('\n')
    assert.match(all, paths ? /integrity: file \/secret-folder\/private-name\.txt block 0/ : /integrity: file id [0-9a-f]{16} block 0/)
    assert.equal(all.includes('private-name'), paths, `paths ${String(paths)}:\n${all}`)
  }
})
