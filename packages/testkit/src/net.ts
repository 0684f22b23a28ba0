import { createServer } from 'node:net'

/**
 * A TCP port on 127.0.0.1 that nothing listens on (bound once, then released), so a connection to it is refused.
 * Another process could take it in between; on a test machine that is rare enough to accept.
 */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address')
  return address.port
}
