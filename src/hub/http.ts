// The hub's HTTP helpers: bounded JSON bodies in, JSON answers out.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { badRequest, HubError } from './errors.js'

export const MAX_JSON_BODY = 64 * 1024

export async function readJson (req: IncomingMessage, maxBody = MAX_JSON_BODY): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of req) {
    size += (c as Buffer).length
    if (size > maxBody) throw new HubError(413, 'too_large', 'request body too large')
    chunks.push(c as Buffer)
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error()
    return v
  } catch {
    throw badRequest('body must be a JSON object')
  }
}

export function send (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
  res.end(text)
}
