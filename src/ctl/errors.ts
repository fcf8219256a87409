// Typed errors of the control socket. `code` is the stable string every client branches on; the
// JSON-RPC `error.code` number is derived from it (table in docs/api.md) and never reused.
export const CTL_ERRORS = {
  // JSON-RPC 2.0's own
  ERR_PARSE: -32700,
  ERR_INVALID_REQUEST: -32600,
  ERR_METHOD_NOT_FOUND: -32601,
  ERR_INVALID_PARAMS: -32602,
  ERR_INTERNAL: -32603,
  // session
  ERR_HANDSHAKE_REQUIRED: -32001,
  ERR_PROTOCOL_VERSION: -32002,
  ERR_MESSAGE_TOO_LARGE: -32003,
  ERR_BUSY: -32004,
  ERR_TIMEOUT: -32005,
  // app tokens
  ERR_TOKEN_MISSING: -32010,
  ERR_TOKEN_INVALID: -32011,
  ERR_TOKEN_REVOKED: -32012,
  ERR_TOKEN_EXPIRED: -32013,
  ERR_FORBIDDEN: -32014,
  ERR_TOKEN_NOT_FOUND: -32015,
  ERR_TOKEN_NAME_TAKEN: -32016,
  // the drive and the keys (data.cause carries the lower layer's code)
  ERR_NOT_MOUNTED: -32020,
  ERR_ALREADY_MOUNTED: -32021,
  ERR_DRIVE: -32022,
  ERR_KEYS: -32023,
  ERR_SYNC: -32024, // no hub configured, no such device, or the hub refused (data.cause: the sync or transport code)
  // client side only: nothing answers on the socket, or the answer is not JSON-RPC
  ERR_NO_DAEMON: -32030,
  ERR_SOCKET_IN_USE: -32031,
  ERR_SOCKET_UNSAFE: -32032,
  ERR_BAD_RESPONSE: -32033
} as const

export type CtlErrorCode = keyof typeof CTL_ERRORS

export class CtlError extends Error {
  readonly rpcCode: number
  constructor (readonly code: CtlErrorCode, message: string, readonly data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CtlError'
    this.rpcCode = CTL_ERRORS[code]
  }

  /** The JSON-RPC error object; `data.code` repeats the stable string code. */
  toRpc (): { code: number, message: string, data: Record<string, unknown> } {
    return { code: this.rpcCode, message: this.message, data: { ...this.data, code: this.code } }
  }

  /** Rebuilds the error a server sent; an unknown code is a protocol problem, not a crash. */
  static fromRpc (e: unknown): CtlError {
    const o = e as { code?: unknown, message?: unknown, data?: Record<string, unknown> } | null
    const data = (o?.data != null && typeof o.data === 'object') ? o.data : {}
    const name = typeof data.code === 'string' && data.code in CTL_ERRORS ? data.code as CtlErrorCode : null
    const message = typeof o?.message === 'string' ? o.message : 'malformed error from the daemon'
    if (name !== null) return new CtlError(name, message, data)
    const byNumber = Object.entries(CTL_ERRORS).find(([, n]) => n === o?.code)?.[0] as CtlErrorCode | undefined
    return new CtlError(byNumber ?? 'ERR_BAD_RESPONSE', message, data)
  }
}

export function isCtlError (err: unknown, code?: CtlErrorCode): err is CtlError {
  return err instanceof CtlError && (code === undefined || err.code === code)
}
