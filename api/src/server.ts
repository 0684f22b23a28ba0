import { once } from 'node:events'
import { createServer } from 'node:http'
import { createApi } from './app.ts'
import type { ApiDeps } from './options.ts'

/** After close() stops accepting, in-flight requests get this long before their sockets are cut. */
export const CLOSE_GRACE_MS = 5_000

export interface StartApiOptions extends ApiDeps {
  readonly host: string
  /** 0 picks a free port; the chosen one is in the result. */
  readonly port: number
}

export interface RunningApi {
  readonly port: number
  close(): Promise<void>
}

export async function startApi(options: StartApiOptions): Promise<RunningApi> {
  const { host, port, ...deps } = options
  const server = createServer(createApi(deps))
  server.listen({ host, port })
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') {
    server.close()
    throw new Error(`api server has no TCP address (got ${String(address)})`)
  }
  deps.log.info({ host, port: address.port }, 'api listening')

  let closing: Promise<void> | undefined
  return {
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS)
        force.unref()
        server.close((error) => {
          clearTimeout(force)
          if (error) reject(error)
          else resolve()
        })
        // Keep-alive connections with no request in flight would otherwise hold close() open.
        server.closeIdleConnections()
      })
      return closing
    },
  }
}
