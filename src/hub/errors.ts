// Errors the hub answers with. `code` goes on the wire (JSON `error`) and is stable.
export class HubError extends Error {
  readonly status: number
  readonly code: string
  readonly headers: Record<string, string>
  constructor (status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'HubError'
    this.status = status
    this.code = code
    this.headers = headers
  }
}

export const badRequest = (message: string): HubError => new HubError(400, 'bad_request', message)
