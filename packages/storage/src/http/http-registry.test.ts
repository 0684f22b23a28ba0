import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { silentLogger } from '@skolluft/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { createHttpRegistry } from './http-registry.ts'

/**
 * Whatever goes wrong reading the registry over HTTP must make the ingest hold the device's acknowledgement
 * (STORAGE_UNAVAILABLE, retried), never drop the message: a proxy's error page, an API of another version.
 */
describe('HTTP registry: failed reads are STORAGE_UNAVAILABLE', () => {
  let server: Server | undefined
  afterEach(async () => {
    const running = server
    server = undefined
    if (running !== undefined) await new Promise((resolve) => running.close(resolve))
  })

  async function api(status: number, contentType: string, body: string): Promise<string> {
    const created = createServer((_request, response) => {
      response.writeHead(status, { 'content-type': contentType })
      response.end(body)
    })
    server = created
    await new Promise<void>((resolve) => created.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(created.address() as AddressInfo).port}`
  }

  for (const [what, status, contentType, body] of [
    ['a proxy page that is not JSON', 200, 'text/html', '<html>maintenance</html>'],
    ['an answer that breaks the contract', 200, 'application/json', '{"revision":"x","devices":7}'],
    ['a refused request (an API of another version)', 400, 'application/problem+json', '{"code":"bad_request"}'],
  ] as const) {
    it(`for ${what}`, async () => {
      const url = await api(status, contentType, body)
      const registry = createHttpRegistry({ url, token: 'skl_test', log: silentLogger() })
      await expect(registry.getDevice('dev-1')).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
      await expect(registry.revision()).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    })
  }
})
