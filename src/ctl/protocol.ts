// The control protocol shared by the daemon and its clients: JSON-RPC 2.0 over a Unix socket, one
// message per line. Version, limits, scopes, the method -> scope table and parameter checks live
// here so server and client cannot drift. The reference is docs/api.md.
import { CtlError } from './errors.js'

export const PROTOCOL_VERSION = 1
export const SUPPORTED_PROTOCOLS: readonly number[] = [1]
/** One message, newline excluded. Bigger lines get ERR_MESSAGE_TOO_LARGE and the connection ends. */
export const MAX_MESSAGE_BYTES = 1024 * 1024

export const SCOPES = ['status:read', 'sync:read', 'identity:read', 'log:read', 'events:read', 'mount:write', 'keys:admin', 'tokens:admin'] as const
export type Scope = typeof SCOPES[number]

/** Every method and the one scope that allows it (`hello` needs none: it is how a token arrives). */
export const METHOD_SCOPES = {
  hello: null,
  status: 'status:read',
  'sync.status': 'sync:read',
  devices: 'sync:read',
  'devices.revoke': 'keys:admin',
  whoami: 'identity:read',
  log: 'log:read',
  mount: 'mount:write',
  unmount: 'mount:write',
  'keys.backup': 'keys:admin',
  'keys.recover': 'keys:admin',
  'tokens.create': 'tokens:admin',
  'tokens.list': 'tokens:admin',
  'tokens.revoke': 'tokens:admin',
  'events.subscribe': 'events:read',
  'events.unsubscribe': 'events:read'
} as const satisfies Record<string, Scope | null>

export type MethodName = keyof typeof METHOD_SCOPES
export const METHODS = Object.keys(METHOD_SCOPES) as MethodName[]
export const isMethod = (m: string): m is MethodName => Object.hasOwn(METHOD_SCOPES, m)

/** A token's allow list holds scopes, method names, or "*" (the master token). */
export function allows (allow: readonly string[], method: MethodName): boolean {
  const scope = METHOD_SCOPES[method]
  return scope === null || allow.includes('*') || allow.includes(scope) || allow.includes(method)
}

export const isAllowEntry = (s: string): boolean => s === '*' || (SCOPES as readonly string[]).includes(s) || (isMethod(s) && s !== 'hello')

export type ChangeKind = 'created' | 'updated' | 'removed' | 'renamed'
/**
 * `overflow`: events were dropped because too many piled up in one window; rescan. `sync`: what
 * sync did (path ''; `sync` says what: pushed, merged, refused, error, download; docs/api.md).
 */
export interface ChangeEvent { kind: ChangeKind | 'overflow' | 'sync', path: string, to?: string, time: number, sync?: Record<string, unknown> }
export interface ProgressParams { id: string | number | null, stage: string, done: number, total: number | null }
export interface LogEntry { seq: number, time: number, root: string }

export interface TokenInfo {
  id: string
  name: string
  allow: string[]
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  master: boolean
}

export interface StatusResult {
  version: string
  protocol: number
  pid: number
  startedAt: string
  mounted: boolean
  mountpoint: string | null
  dataDir: string
  configDir: string
  socket: string | null
  storeBytes: number
  storeFiles: number
  identity: { publicKey: string, fingerprint: string } | null
  connections: number
  subscribers: number
}

export type Id = string | number | null
export interface RpcRequest { jsonrpc: '2.0', id?: Id, method: string, params?: unknown }

// ---- parameter checks: every method takes one object; unknown keys are refused (typos fail loudly)

export type Params = Record<string, unknown>

export function objectParams (params: unknown, allowed: readonly string[]): Params {
  if (params === undefined || params === null) return {}
  if (typeof params !== 'object' || Array.isArray(params)) throw new CtlError('ERR_INVALID_PARAMS', 'params must be an object')
  const extra = Object.keys(params).filter(k => !allowed.includes(k))
  if (extra.length > 0) throw new CtlError('ERR_INVALID_PARAMS', `unknown parameter "${extra[0]}"`, { param: extra[0] })
  return params as Params
}

const bad = (name: string, what: string): CtlError => new CtlError('ERR_INVALID_PARAMS', `parameter "${name}" must be ${what}`, { param: name })

export function str (p: Params, name: string, opts: { max?: number } = {}): string | undefined {
  const v = p[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v.length > (opts.max ?? 4096)) throw bad(name, `a string of at most ${opts.max ?? 4096} characters`)
  return v
}

export function reqStr (p: Params, name: string, opts: { max?: number } = {}): string {
  const v = str(p, name, opts)
  if (v === undefined || v === '') throw bad(name, 'a non-empty string')
  return v
}

export function int (p: Params, name: string, min: number, max: number): number | undefined {
  const v = p[name]
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(name, `an integer from ${min} to ${max}`)
  return v
}

export function bool (p: Params, name: string): boolean | undefined {
  const v = p[name]
  if (v === undefined) return undefined
  if (typeof v !== 'boolean') throw bad(name, 'true or false')
  return v
}

export function strList (p: Params, name: string, maxItems: number): string[] | undefined {
  const v = p[name]
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.length > maxItems || !v.every(x => typeof x === 'string' && x.length <= 64)) throw bad(name, `an array of at most ${maxItems} short strings`)
  return v as string[]
}
