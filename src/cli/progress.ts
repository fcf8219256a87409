// Progress of long requests (key backup, store scans, later sync): on a terminal one line that
// is redrawn in place (ticking while a stage has no count), elsewhere plain lines: one per stage
// and every 10 %. Quick work shows nothing: output starts once the operation has run `delayMs`.
import type { ProgressParams } from '../ctl/protocol.js'

export interface Progress {
  update: (p: Pick<ProgressParams, 'stage' | 'done' | 'total'>) => void
  /** Clears the bar (terminal); plain lines stay as they are. */
  end: () => void
}

const WIDTH = 24

export function progressReporter (stream: NodeJS.WritableStream, opts: { tty?: boolean, delayMs?: number, now?: () => number } = {}): Progress {
  const tty = opts.tty ?? (stream as { isTTY?: boolean }).isTTY === true
  const now = opts.now ?? Date.now
  const delay = opts.delayMs ?? 1000
  const started = now()
  let last: Pick<ProgressParams, 'stage' | 'done' | 'total'> | null = null
  let shown = false
  let lastLine = ''

  const draw = (): void => {
    if (last === null || now() - started < delay) return
    const { stage, done, total } = last
    const frac = total !== null && total > 0 ? Math.min(1, done / total) : null
    if (tty) {
      const secs = ((now() - started) / 1000).toFixed(1)
      const bar = frac === null
        ? `${stage}... ${secs}s`
        : `[${'#'.repeat(Math.round(frac * WIDTH)).padEnd(WIDTH, '.')}] ${String(Math.floor(frac * 100)).padStart(3)}% ${stage} (${secs}s)`
      stream.write(`\r\x1b[K${bar}`)
      shown = true
      return
    }
    const line = `${stage}${total !== null ? ` ${Math.floor((frac ?? 0) * 10) * 10}%` : ''}`
    if (line === lastLine) return
    lastLine = line
    stream.write(`${stage}${total !== null ? ` ${done}/${total}` : ''}\n`)
  }
  // A terminal bar keeps ticking through a long stage that reports nothing in between.
  const ticker = tty ? setInterval(draw, 200) : null
  ticker?.unref()

  return {
    update (p) {
      last = { stage: p.stage, done: p.done, total: p.total }
      draw()
    },
    end () {
      if (ticker !== null) clearInterval(ticker)
      if (tty && shown) stream.write('\r\x1b[K')
    }
  }
}
