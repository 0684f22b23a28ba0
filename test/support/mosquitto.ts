import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { closedPort, tempDir, waitFor } from '@skolluft/testkit'

/**
 * Eclipse Mosquitto 2 for tests: Debian's `mosquitto` package (installed by .ci/run; /usr/sbin/mosquitto
 * 2.0.11), started on 127.0.0.1 at a free port with a generated configuration in a temp dir, no anonymous
 * access, a password file and an ACL file. MOSQUITTO_PATH / MOSQUITTO_PASSWD_PATH point elsewhere if needed.
 */
export const MOSQUITTO_PATH = process.env.MOSQUITTO_PATH ?? '/usr/sbin/mosquitto'
export const MOSQUITTO_PASSWD_PATH = process.env.MOSQUITTO_PASSWD_PATH ?? '/usr/bin/mosquitto_passwd'

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
  const missing = [MOSQUITTO_PATH, MOSQUITTO_PASSWD_PATH].filter((p) => !existsSync(p))
  if (missing.length === 0) return true
  const reason = `no ${missing.join(' or ')} (Debian: apt-get install -y mosquitto, or set MOSQUITTO_PATH and MOSQUITTO_PASSWD_PATH)`
  if (process.env.SKOLLUFT_REQUIRE_MOSQUITTO === '1') throw new Error(`Mosquitto tests required but ${reason}`)
  console.warn(`SKIPPING Mosquitto tests: ${reason}`)
  return false
}

export interface MosquittoConfigOptions {
  /** Listener address; `0.0.0.0` in a container. */
  readonly host: string
  readonly port: number
  readonly passwordFile: string
  readonly aclFile: string
  /** Directory of `mosquitto.db`; must end in a slash for mosquitto (added if missing). */
  readonly persistenceDir: string
  /** `stdout`, `stderr` or `file <path>`. */
  readonly logDest?: string
  /** The OS user mosquitto runs as when started as root (it drops privileges to `mosquitto` otherwise). */
  readonly runAsUser?: string
  /** QoS 1 messages in flight per MQTT 3.1.1 client; see MOSQUITTO_MAX_INFLIGHT. */
  readonly maxInflightMessages?: number
  /** Messages queued per session beyond the in-flight ones; see MOSQUITTO_MAX_QUEUED. */
  readonly maxQueuedMessages?: number
  /** Also log every packet (`log_type all`: "Sending PUBLISH to <client id> (d0, q1, …)"); for tests. */
  readonly logPackets?: boolean
}

/**
 * QoS 1 deliveries mosquitto keeps in flight to one v3.1.1 client (its default is 20). The ingest holds each
 * PUBACK until the commit and commits many messages at once (ingest/src/ack-after-commit.ts); 20 in flight
 * would make every commit a group of at most 20. 200 stays under the ingest's own MAX_IN_FLIGHT (500), so
 * the broker, not the ingest's back-pressure, is the bound.
 */
export const MOSQUITTO_MAX_INFLIGHT = 200
/**
 * Messages queued for one persistent session beyond those in flight. Mosquitto's default is 1000, and past
 * the limit it DROPS QoS 1 messages for that session (mosquitto.conf(5), max_queued_messages). An ingest
 * worker that is down (crashed, being restarted) keeps receiving its round-robin share into its queue (see
 * test/e2e/ingest-shared.test.ts), so the queue must hold everything a fleet sends during an outage:
 * 1 000 000 messages is ~10 days of 1 000 devices at one message a minute, at ~200 B each ~200 MB.
 */
export const MOSQUITTO_MAX_QUEUED = 1_000_000

/** mosquitto.conf for the platform: authenticated only, ACL from a file, persistent sessions on disk. */
export function mosquittoConfig(options: MosquittoConfigOptions): string {
  const persistence = options.persistenceDir.endsWith('/') ? options.persistenceDir : `${options.persistenceDir}/`
  return [
    '# Generated for skolluft (test/support/mosquitto.ts). Mosquitto 2.0.',
    'per_listener_settings false',
    `listener ${options.port} ${options.host}`,
    'allow_anonymous false',
    `password_file ${options.passwordFile}`,
    `acl_file ${options.aclFile}`,
    ...(options.runAsUser === undefined ? [] : [`user ${options.runAsUser}`]),
    // Persistent sessions (the ingest's queue) survive a broker restart.
    'persistence true',
    `persistence_location ${persistence}`,
    'autosave_interval 60',
    // Sessions never expire: a worker's queued share waits for that worker to come back (see MOSQUITTO_MAX_QUEUED).
    `max_inflight_messages ${options.maxInflightMessages ?? MOSQUITTO_MAX_INFLIGHT}`,
    `max_queued_messages ${options.maxQueuedMessages ?? MOSQUITTO_MAX_QUEUED}`,
    `log_dest ${options.logDest ?? 'stdout'}`,
    ...(options.logPackets === true
      ? ['log_type all']
      : ['log_type error', 'log_type warning', 'log_type notice', 'log_type information']),
    'connection_messages true',
    'log_timestamp true',
    '',
  ].join('\n')
}

/**
 * The ACL (mosquitto.conf(5), acl_file), mirroring gateway/src/permissions.ts: a device (username = device id)
 * publishes only its own telemetry and status and reads only its own config; the ingest reads every device's
 * telemetry and status (directly or through `$share/<group>/…`) and publishes device config and platform
 * events; the api reads telemetry and status; the alerts service reads platform events.
 *
 * Caveat, measured on 2.0.11: the acl_file checks PUBLISH and each delivery, never SUBSCRIBE (security_default.c:
 * `if(access == MOSQ_ACL_SUBSCRIBE) return MOSQ_ERR_SUCCESS;`, marked FIXME). Any logged-in client, a device
 * too, can join `$share/<ingest group>/aq/v1/devices/+/telemetry`; it then takes its turn in the rotation, the
 * delivery to it is refused by the read ACL, and that message reaches no ingest worker: with one such intruder
 * and one worker, half the telemetry was lost. Keep the group name out of device hands, or use Mosquitto's
 * dynamic-security plugin (mosquitto_dynamic_security.so, in Debian's package), which does check subscriptions.
 */
export function mosquittoAcl(users: {
  readonly ingest: string
  readonly api?: string
  readonly alerts?: string
}): string {
  const lines = [
    '# Generated for skolluft (test/support/mosquitto.ts). %u is the username (a device logs in as its id).',
    'pattern write aq/v1/devices/%u/telemetry',
    'pattern write aq/v1/devices/%u/status',
    'pattern read aq/v1/devices/%u/config',
    '',
    `user ${users.ingest}`,
    'topic read aq/v1/devices/+/telemetry',
    'topic read aq/v1/devices/+/status',
    'topic write aq/v1/devices/+/config',
    'topic write aq/v1/events/#',
  ]
  if (users.api !== undefined) {
    lines.push('', `user ${users.api}`, 'topic read aq/v1/devices/+/telemetry', 'topic read aq/v1/devices/+/status')
  }
  if (users.alerts !== undefined) lines.push('', `user ${users.alerts}`, 'topic read aq/v1/events/#')
  return `${lines.join('\n')}\n`
}

export interface MosquittoUser {
  readonly username: string
  readonly password: string
}

export interface TestMosquitto {
  readonly url: string
  readonly port: number
  /** Everything mosquitto has logged so far. */
  log(): string
  /** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; removes the temp dir. */
  close(): Promise<void>
}

/** Writes the password file with `mosquitto_passwd -b` (the first call creates it with -c). */
async function writePasswordFile(path: string, users: readonly MosquittoUser[]): Promise<void> {
  let first = true
  for (const user of users) {
    await execFileAsync(MOSQUITTO_PASSWD_PATH, [...(first ? ['-c'] : []), '-b', path, user.username, user.password])
    first = false
  }
  await chmod(path, 0o600)
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
 * Starts mosquitto with the given users (devices and services) and ACL. Call mosquittoAvailable() first.
 * The ingest user is named in `acl.ingest`; every user needs an entry in `users` to log in.
 */
export async function startMosquitto(options: {
  readonly users: readonly MosquittoUser[]
  readonly acl: Parameters<typeof mosquittoAcl>[0]
  readonly maxInflightMessages?: number
  readonly maxQueuedMessages?: number
  readonly logPackets?: boolean
}): Promise<TestMosquitto> {
  const dir = await tempDir('skolluft-mosquitto-')
  const passwordFile = join(dir.path, 'passwd')
  const aclFile = join(dir.path, 'acl')
  const configFile = join(dir.path, 'mosquitto.conf')
  const port = await closedPort()
  await writePasswordFile(passwordFile, options.users)
  await writeFile(aclFile, mosquittoAcl(options.acl), { mode: 0o600 })
  await writeFile(
    configFile,
    mosquittoConfig({
      host: '127.0.0.1',
      port,
      passwordFile,
      aclFile,
      persistenceDir: dir.path,
      runAsUser: userInfo().username,
      logPackets: options.logPackets ?? false,
      ...(options.maxInflightMessages === undefined ? {} : { maxInflightMessages: options.maxInflightMessages }),
      ...(options.maxQueuedMessages === undefined ? {} : { maxQueuedMessages: options.maxQueuedMessages }),
    }),
  )
  const child = spawn(MOSQUITTO_PATH, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${output}`)
        return canConnect(port)
      },
      `mosquitto to listen on 127.0.0.1:${port}`,
      { timeoutMs: START_TIMEOUT_MS },
    )
  } catch (error) {
    child.kill('SIGKILL')
    await exited(child)
    await dir.cleanup()
    throw error
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
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
