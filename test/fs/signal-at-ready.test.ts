// A service manager, a script or a user may stop `space mount` and `space hub` the moment they
// say they are ready. Their signal handlers must be in place before that line is written: with
// the line first, a SIGTERM read off it killed the process half of the time (exit 143, the mount
// left behind) instead of unmounting it (seen by a script: 8 of 15 runs).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { CLI, tempDirs, removeDirs, isMounted } from '../helpers/mount.js'

/** Starts `space ARGS`, sends SIGTERM in the same turn as the chunk of stdout that holds `ready`; resolves to its exit code and output. */
async function stopAtReady (args: string[], ready: string): Promise<{ code: number | null, signal: string | null, out: string, err: string }> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  let sent = false
  proc.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s
    if (!sent && out.includes(ready)) { sent = true; proc.kill('SIGTERM') }
  })
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { err += s })
  const killer = setTimeout(() => proc.kill('SIGKILL'), 60_000)
  const [code, signal] = await new Promise<[number | null, string | null]>(resolve => proc.once('exit', (c, s) => { resolve([c, s]) }))
  clearTimeout(killer)
  return { code, signal, out, err }
}

test('space mount stopped the moment it prints "mounted": it unmounts and exits 0, every time', async () => {
  for (let i = 0; i < 8; i++) {
    const dirs = tempDirs('space-ready-')
    try {
      const r = await stopAtReady(['mount', dirs.mnt, '--data-dir', dirs.data, '--config-dir', dirs.config], 'mounted ')
      assert.equal(r.signal, null, `run ${i}: killed by ${r.signal ?? ''}: ${r.err}`)
      assert.equal(r.code, 0, `run ${i}: exit ${r.code ?? ''}: ${r.err}`)
      assert.match(r.out, /unmounted /, `run ${i}`)
      assert.equal(isMounted(dirs.mnt), false, `run ${i}: left mounted`)
    } finally {
      removeDirs(dirs)
    }
  }
})

test('space hub stopped the moment it prints "listening": it closes and exits 0, every time', async () => {
  for (let i = 0; i < 8; i++) {
    const dirs = tempDirs('space-ready-hub-')
    try {
      const r = await stopAtReady(['hub', '--port', '0', '--data-dir', dirs.data], 'listening on ')
      assert.equal(r.signal, null, `run ${i}: killed by ${r.signal ?? ''}: ${r.err}`)
      assert.equal(r.code, 0, `run ${i}: exit ${r.code ?? ''}: ${r.err}`)
      assert.match(r.err, /space hub: stopped/, `run ${i}`)
    } finally {
      removeDirs(dirs)
    }
  }
})
