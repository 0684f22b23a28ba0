// Health check of a skolluft container: `node infra/docker/healthcheck.mjs [gateway|ingest|api|alerts]`.
// Without an argument the role is read from the command line of process 1 (`… skolluft.js <role>`), so the image's
// HEALTHCHECK serves every role. Exit 0 healthy, 1 unhealthy. Plain JavaScript: it must start without tsx.
//
//   api            GET http://127.0.0.1:$PORT/healthz answers 200 (api/src/routes/health.ts: storage answers)
//   gateway        the MQTT listener on 127.0.0.1:$MQTT_PORT accepts a TCP connection
//   ingest, alerts the broker at $MQTT_URL accepts a TCP connection (they serve nothing themselves; a worker that
//                  cannot reach its broker is not ready). Use it for readiness, not to restart the worker.
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'

/** Docker's default health check timeout is 30 s; answer well inside it. */
const TIMEOUT_MS = 5_000
const ROLES = ['gateway', 'ingest', 'api', 'alerts']

function roleOf(argv) {
  const explicit = argv.find((a) => ROLES.includes(a))
  if (explicit !== undefined) return explicit
  try {
    const words = readFileSync('/proc/1/cmdline', 'utf8').split('\0')
    return words.find((w) => ROLES.includes(w))
  } catch {
    return undefined
  }
}

function tcp(host, port) {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: TIMEOUT_MS })
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => done(true))
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}

async function http(url) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) })
    return response.status === 200
  } catch {
    return false
  }
}

function brokerAddress(value) {
  const url = new URL(value ?? 'mqtt://127.0.0.1:1883')
  const port = url.port === '' ? (url.protocol === 'mqtts:' ? 8883 : 1883) : Number(url.port)
  return { host: url.hostname, port }
}

async function check(role, env) {
  switch (role) {
    case 'api':
      return http(`http://127.0.0.1:${env.PORT || 8080}/healthz`)
    case 'gateway':
      return tcp('127.0.0.1', Number(env.MQTT_PORT || 1883))
    case 'ingest':
    case 'alerts': {
      const { host, port } = brokerAddress(env.MQTT_URL || undefined)
      return tcp(host, port)
    }
    default:
      return false
  }
}

const role = roleOf(process.argv.slice(2))
const healthy = role === undefined ? false : await check(role, process.env)
if (!healthy) console.error(`skolluft ${role ?? '(unknown role)'}: unhealthy`)
process.exitCode = healthy ? 0 : 1
