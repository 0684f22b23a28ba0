import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { userInfo } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { generateSecret } from '@skolluft/runtime'
import { closedPort, tempDir, waitFor } from '@skolluft/testkit'

/**
 * Eclipse Mosquitto 2 for tests, run the way the container runs it: Debian's `mosquitto` package (installed by
 * .ci/run; /usr/sbin/mosquitto 2.0.11) started through the shipped entry point (infra/mosquitto/docker-entrypoint.sh)
 * with the shipped infra/mosquitto/mosquitto.conf, only its port, paths and user moved into a temp dir. So the
 * logins and ACLs tested are the dynamic-security rules a deployment gets, not a copy.
 * MOSQUITTO_PATH, MOSQUITTO_PASSWD_PATH and MOSQUITTO_DYNSEC_PLUGIN_PATH point elsewhere if needed.
 */
export const MOSQUITTO_PATH = process.env.MOSQUITTO_PATH ?? '/usr/sbin/mosquitto'
export const MOSQUITTO_PASSWD_PATH = process.env.MOSQUITTO_PASSWD_PATH ?? '/usr/bin/mosquitto_passwd'
/** Where Debian's package (per architecture) or a source build puts the dynamic-security plugin. */
export const MOSQUITTO_DYNSEC_PLUGIN_PATH =
  process.env.MOSQUITTO_DYNSEC_PLUGIN_PATH ??
  [
    '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
    '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so',
    '/usr/lib/mosquitto_dynamic_security.so',
  ].find((p) => existsSync(p)) ??
  '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so'

export const MOSQUITTO_INFRA_DIR = fileURLToPath(new URL('../../infra/mosquitto/', import.meta.url))
export const MOSQUITTO_ENTRYPOINT = join(MOSQUITTO_INFRA_DIR, 'docker-entrypoint.sh')
export const MOSQUITTO_SHIPPED_CONF = join(MOSQUITTO_INFRA_DIR, 'mosquitto.conf')
/** The plugin path in the shipped configuration (the eclipse-mosquitto image's). */
const IMAGE_DYNSEC_PLUGIN_PATH = '/usr/lib/mosquitto_dynamic_security.so'

/** How long mosquitto may take to accept connections after spawning (it starts in milliseconds). */
const START_TIMEOUT_MS = 10_000
/** How long a SIGTERM may take before the broker is killed (it persists its database on the way out). */
const STOP_TIMEOUT_MS = 5_000

const execFileAsync = promisify(execFile)

/**
 * Whether Mosquitto tests can run here. Without the binaries they are skipped with the reason printed,
 * unless SKOLLUFT_REQUIRE_MOSQUITTO=1 (set by .ci/run), where a missing broker fails the run instead.
 */
export function mosquittoAvailable(): boolean {
  const missing = [MOSQUITTO_PATH, MOSQUITTO_PASSWD_PATH, MOSQUITTO_DYNSEC_PLUGIN_PATH].filter((p) => !existsSync(p))
  if (missing.length === 0) return true
  const reason = `no ${missing.join(' or ')} (Debian: apt-get install -y mosquitto, or set MOSQUITTO_PATH, MOSQUITTO_PASSWD_PATH and MOSQUITTO_DYNSEC_PLUGIN_PATH)`
  if (process.env.SKOLLUFT_REQUIRE_MOSQUITTO === '1') throw new Error(`Mosquitto tests required but ${reason}`)
  console.warn(`SKIPPING Mosquitto tests: ${reason}`)
  return false
}

export interface LocalConfOptions {
  readonly port: number
  /** Replaces /mosquitto/data/ (persistence, the plugin's file). */
  readonly dataDir: string
  /** The OS user mosquitto runs as when started as root (it drops privileges to `mosquitto` otherwise). */
  readonly runAsUser: string
  /** Overrides the shipped max_inflight_messages / max_queued_messages. */
  readonly maxInflightMessages?: number
  readonly maxQueuedMessages?: number
  /** Also log every packet (`log_type all`: "Sending PUBLISH to <client id> (d0, q1, …)"); for tests. */
  readonly logPackets?: boolean
}

function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const found = typeof from === 'string' ? text.includes(from) : from.test(text)
  if (!found)
    throw new Error(`the shipped mosquitto.conf has no ${String(from)}: test/support/mosquitto.ts is out of date`)
  return text.replace(from, to)
}

/**
 * The shipped mosquitto.conf with this machine's port (127.0.0.1 only), user, plugin path and data dir; everything
 * else as shipped. Throws when a line it moves is missing, and when a container path is left.
 */
export function localMosquittoConf(shipped: string, options: LocalConfOptions): string {
  const dataDir = options.dataDir.endsWith('/') ? options.dataDir : `${options.dataDir}/`
  let conf = replaceOnce(shipped, 'listener 1883 0.0.0.0', `listener ${options.port} 127.0.0.1`)
  conf = `${conf}\nuser ${options.runAsUser}\n`
  conf = replaceOnce(conf, `plugin ${IMAGE_DYNSEC_PLUGIN_PATH}`, `plugin ${MOSQUITTO_DYNSEC_PLUGIN_PATH}`)
  conf = conf.replaceAll('/mosquitto/data/', dataDir)
  if (options.maxInflightMessages !== undefined) {
    conf = replaceOnce(conf, /^max_inflight_messages \d+$/m, `max_inflight_messages ${options.maxInflightMessages}`)
  }
  if (options.maxQueuedMessages !== undefined) {
    conf = replaceOnce(conf, /^max_queued_messages \d+$/m, `max_queued_messages ${options.maxQueuedMessages}`)
  }
  if (options.logPackets === true) conf = replaceOnce(conf, /^log_type information$/m, 'log_type all')
  if (/^[a-z_]+ \/mosquitto\//m.test(conf)) throw new Error('a /mosquitto/ container path is left in mosquitto.conf')
  return conf
}

export interface MosquittoUser {
  readonly username: string
  readonly password: string
}

/** The services' accounts the entry point creates (svc.<name>); their passwords are generated unless given. */
export interface MosquittoServices {
  readonly ingest: MosquittoUser
  readonly api: MosquittoUser
  readonly alerts: MosquittoUser
  /** Generated by the entry point at start (never leaves the container in production). */
  readonly health: MosquittoUser
}

export interface TestMosquitto {
  readonly url: string
  readonly port: number
  readonly services: MosquittoServices
  /** The temp dir holding the configuration, the plugin's file and the persistence database. */
  readonly dir: string
  /** Everything mosquitto (and the entry point) logged so far. */
  log(): string
  /** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; removes the temp dir. */
  close(): Promise<void>
}

/** Writes a device file as the operator does, `mosquitto_passwd -b` per device (the first call creates it, -c). */
export async function writeDevicesFile(path: string, devices: readonly MosquittoUser[]): Promise<void> {
  if (devices.length === 0) return
  let first = true
  for (const device of devices) {
    await execFileAsync(MOSQUITTO_PASSWD_PATH, [...(first ? ['-c'] : []), '-b', path, device.username, device.password])
    first = false
  }
  await chmod(path, 0o600)
}

/** The entry point's environment for files in `dir`: its path variables and a PATH that finds Debian's binaries. */
export function entrypointEnv(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${dirname(MOSQUITTO_PATH)}:${dirname(MOSQUITTO_PASSWD_PATH)}:${process.env.PATH ?? ''}`,
    MOSQUITTO_CONF: join(dir, 'mosquitto.conf'),
    MOSQUITTO_DEVICES_FILE: join(dir, 'devices.passwd'),
    MOSQUITTO_DYNSEC_FILE: join(dir, 'dynamic-security.json'),
    MOSQUITTO_HEALTH_FILE: join(dir, 'health.password'),
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/**
 * Starts mosquitto through the shipped entry point with these devices (username = device id) and the services'
 * accounts (svc.ingest, svc.api, svc.alerts; passwords generated unless given). Call mosquittoAvailable() first.
 */
export async function startMosquitto(options: {
  readonly devices: readonly MosquittoUser[]
  readonly passwords?: { readonly ingest?: string; readonly api?: string; readonly alerts?: string }
  readonly maxInflightMessages?: number
  readonly maxQueuedMessages?: number
  readonly logPackets?: boolean
}): Promise<TestMosquitto> {
  const dir = await tempDir('skolluft-mosquitto-')
  const port = await closedPort()
  const env = entrypointEnv(dir.path)
  const passwords = {
    ingest: options.passwords?.ingest ?? generateSecret(),
    api: options.passwords?.api ?? generateSecret(),
    alerts: options.passwords?.alerts ?? generateSecret(),
  }
  await writeDevicesFile(join(dir.path, 'devices.passwd'), options.devices)
  await writeFile(
    join(dir.path, 'mosquitto.conf'),
    localMosquittoConf(await readFile(MOSQUITTO_SHIPPED_CONF, 'utf8'), {
      port,
      dataDir: dir.path,
      runAsUser: userInfo().username,
      logPackets: options.logPackets ?? false,
      ...(options.maxInflightMessages === undefined ? {} : { maxInflightMessages: options.maxInflightMessages }),
      ...(options.maxQueuedMessages === undefined ? {} : { maxQueuedMessages: options.maxQueuedMessages }),
    }),
  )
  const child = spawn('sh', [MOSQUITTO_ENTRYPOINT], {
    env: {
      ...env,
      MQTT_INGEST_PASSWORD: passwords.ingest,
      MQTT_API_PASSWORD: passwords.api,
      MQTT_ALERTS_PASSWORD: passwords.alerts,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  let healthPassword = ''
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${output}`)
        return canConnect(port)
      },
      `mosquitto to listen on 127.0.0.1:${port}`,
      { timeoutMs: START_TIMEOUT_MS },
    )
    healthPassword = await readFile(join(dir.path, 'health.password'), 'utf8')
  } catch (error) {
    child.kill('SIGKILL')
    await exited(child)
    await dir.cleanup()
    throw error
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir: dir.path,
    services: {
      ingest: { username: 'svc.ingest', password: passwords.ingest },
      api: { username: 'svc.api', password: passwords.api },
      alerts: { username: 'svc.alerts', password: passwords.alerts },
      health: { username: 'svc.health', password: healthPassword },
    },
    log: () => output,
    async close() {
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      child.kill('SIGTERM')
      await exited(child)
      clearTimeout(timer)
      await dir.cleanup()
    },
  }
}
