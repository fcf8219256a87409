// The proxy process of helpers-devices.ts (HubProxy): forwards every request from a device to the
// hub on 127.0.0.1:argv[2] and tells its parent what it saw; on the parent's word it holds
// matching requests (a transfer caught in the middle) or lies (corrupts the blocks it serves,
// answers an entry poll with entries the parent gives). Its own process, so a test that reads a
// mount synchronously never stalls the traffic that read depends on.
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'

export type ProxyCommand =
  | { op: 'hold', method: string, path: string, after: number }
  | { op: 'release' }
  | { op: 'corrupt-blocks', on: boolean }
  | { op: 'inject', entries: string[] }

const target = Number(process.argv[2])
let hold: { method: string, path: string, after: number } | null = null
const held: Array<() => void> = []
let corrupt = false
const injections: string[][] = []
/** Entry polls waiting at the hub: an injection answers one of them at once. */
const polls = new Set<{ res: ServerResponse, up: ReturnType<typeof request> }>()

function answerWith (res: ServerResponse, entries: string[], path: string): void {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ entries, heads: [] }))
  send({ ev: 'lied', what: 'entries', path })
}

const send = (m: unknown): void => { process.send?.(m) }

const isBlocks = (method: string, path: string): boolean => (method === 'POST' && path.startsWith('/sync/v1/blocks/fetch')) || (method === 'GET' && path.startsWith('/ipfs/'))
const isEntryPoll = (method: string, path: string): boolean => method === 'GET' && /^\/sync\/v1\/drives\/[0-9a-f]+\/entries/.test(path)

function forward (req: IncomingMessage, res: ServerResponse, method: string, path: string): void {
  if (res.destroyed || req.destroyed) return
  const up = request({ host: '127.0.0.1', port: target, path, method, headers: req.headers }, upRes => {
    const chunks: Buffer[] = []
    upRes.on('data', (c: Buffer) => chunks.push(c))
    upRes.on('error', () => res.destroy())
    upRes.on('end', () => {
      if (res.writableEnded || res.destroyed) return
      const body = Buffer.concat(chunks)
      const headers = { ...upRes.headers }
      if (corrupt && upRes.statusCode === 200 && isBlocks(method, path) && body.length > 0) {
        body[body.length - 1] ^= 0x55 // the last byte of the last block: framing intact, bytes wrong
        send({ ev: 'lied', what: 'block', path })
      }
      delete headers['transfer-encoding']
      headers['content-length'] = String(body.length)
      res.writeHead(upRes.statusCode ?? 502, headers)
      res.end(body)
    })
  })
  up.on('error', () => { if (!res.writableEnded) res.destroy() })
  const poll = { res, up }
  if (isEntryPoll(method, path)) {
    polls.add(poll)
    res.on('finish', () => polls.delete(poll))
  }
  res.on('close', () => { polls.delete(poll); if (!res.writableFinished) up.destroy() })
  req.pipe(up)
}

const server = createServer((req, res) => {
  const path = req.url ?? '/'
  const method = req.method ?? 'GET'
  send({ ev: 'seen', req: `${method} ${path.split('?')[0]}` })
  if (isEntryPoll(method, path) && injections.length > 0) {
    req.resume()
    answerWith(res, injections.shift()!, path)
    return
  }
  if (hold != null && method === hold.method && path.startsWith(hold.path) && hold.after-- <= 0) {
    held.push(() => forward(req, res, method, path))
    send({ ev: 'held', req: `${method} ${path.split('?')[0]}` })
    return
  }
  forward(req, res, method, path)
})

process.on('message', (c: ProxyCommand) => {
  if (c.op === 'hold') hold = { method: c.method, path: c.path, after: c.after }
  else if (c.op === 'release') { hold = null; for (const go of held.splice(0)) go() }
  else if (c.op === 'corrupt-blocks') corrupt = c.on
  else if (c.op === 'inject') {
    const waiting = [...polls][0]
    if (waiting == null) injections.push(c.entries)
    else {
      polls.delete(waiting)
      waiting.up.removeAllListeners('response')
      waiting.up.on('error', () => {})
      waiting.up.destroy()
      answerWith(waiting.res, c.entries, 'a waiting poll')
    }
  }
  send({ ev: 'ack' })
})
process.on('disconnect', () => process.exit(0))

server.listen(0, '127.0.0.1', () => send({ ev: 'listening', port: (server.address() as { port: number }).port }))
