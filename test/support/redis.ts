import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createConnection } from 'node:net'
import { closedPort, tempDir, waitFor } from '@skolluft/testkit'

/**
 * Redis for tests: Debian's `redis-server` package (7.0; installed by .ci/run, not run as a service), started
 * on 127.0.0.1 at a free port in a temp dir, with no persistence. REDIS_SERVER_PATH points elsewhere if needed.
 */
export const REDIS_SERVER_PATH = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server'

/** How long redis-server may take to answer PING after spawning (it starts in milliseconds). */
const START_TIMEOUT_MS = 10_000
/** How long a SIGTERM may take before the server is killed (nothing to save: `--save ''`). */
const STOP_TIMEOUT_MS = 5_000

/**
 * Whether Redis tests can run here. Without the binary they are skipped with the reason printed, unless
 * SKOLLUFT_REQUIRE_REDIS=1 (set by .ci/run), where a missing server fails the run instead.
 */
export function redisAvailable(): boolean {
  if (existsSync(REDIS_SERVER_PATH)) return true
  const reason = `no ${REDIS_SERVER_PATH} (Debian: apt-get install -y redis-server, or set REDIS_SERVER_PATH)`
  if (process.env.SKOLLUFT_REQUIRE_REDIS === '1') throw new Error(`Redis tests required but ${reason}`)
  console.warn(`SKIPPING Redis tests: ${reason}`)
  return false
}

export interface TestRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  /** What the server printed, for failure messages. */
  log(): string
  /** Stops the server and removes its directory; idempotent. */
  stop(): Promise<void>
}

/** Whether a RESP `PING` on `port` is answered with `+PONG`. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1_000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString()
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
  })
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/**
 * Starts redis-server (call redisAvailable() first). `port` restarts a server on a port used before (e.g. to
 * bring Redis back after an outage); default: a free port.
 */
export async function startRedis(options: { readonly port?: number } = {}): Promise<TestRedis> {
  const dir = await tempDir('skolluft-redis-')
  const port = options.port ?? (await closedPort())
  const child = spawn(
    REDIS_SERVER_PATH,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path],
    { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let output = ''
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${output}`)
        return pings(port)
      },
      `redis-server to answer on 127.0.0.1:${port}`,
      { timeoutMs: START_TIMEOUT_MS },
    )
  } catch (error) {
    child.kill('SIGKILL')
    await exited(child)
    await dir.cleanup()
    throw error
  }
  let stopping: Promise<void> | undefined
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    log: () => output,
    stop() {
      stopping ??= (async () => {
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
        child.kill('SIGTERM')
        await exited(child)
        clearTimeout(timer)
        await dir.cleanup()
      })()
      return stopping
    },
  }
}
