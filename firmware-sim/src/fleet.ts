import { setTimeout as sleep } from 'node:timers/promises'
import {
  DeviceConfig,
  deviceTopic,
  formatTelemetryReading,
  MAX_BATCH_READINGS,
  type MetricValues,
  type SiteKind,
} from '@skolluft/core'
import type { Logger } from '@skolluft/runtime'
import { connect, type MqttClient } from 'mqtt'
import {
  applyFaults,
  DEFAULT_FAULT_RATES,
  type FaultProfile,
  type FaultRates,
  faultProfile,
  outageAt,
  scaleFaultRates,
} from './faults.ts'
import { type SiteProfile, sampleAt, siteProfile } from './model.ts'
import { hash, hashString } from './random.ts'

/**
 * A simulated fleet: every device is its own MQTT client logging in with its own credentials, like
 * real hardware, and follows the device contract (docs/device-contract.md, core topics.ts):
 *
 * - clientId = username = device id, `clean: false` so the broker keeps the session;
 * - last will `{"state":"offline"}` retained on its status topic, `{"state":"online"}` retained on connect;
 * - one reading every interval, QoS 1, on its telemetry topic; `interval_s` from its retained config topic;
 * - store-and-forward: while offline, readings are kept (bounded, 24 h) and sent on reconnect as batches
 *   `{"readings":[…]}` of at most MAX_BATCH_READINGS, each dropped from the buffer only once the broker
 *   acknowledged it (PUBACK). One telemetry message is in flight per device at a time.
 *
 * Time: readings sit on a per-device grid `phase + k·interval` (the phase spreads the fleet over the
 * interval). Simulated time is `t0 + (clock() − t0) · timeScale`; with timeScale > 1 readings are
 * stamped ahead of the wall clock, which a real ingest refuses beyond MAX_FUTURE_SKEW_MS: use it for tests.
 */
export interface SimDevice {
  readonly deviceId: string
  readonly password: string
  readonly siteId: string
  readonly lat: number
  readonly lon: number
  readonly kind: SiteKind
}

export interface FleetOptions {
  readonly log: Logger
  readonly mqttUrl: string
  readonly devices: readonly SimDevice[]
  /** Seconds between readings until a device's config says otherwise; default 60 (device contract). */
  readonly intervalS?: number
  /** Overall fault rate (SIM_FAULT_RATE): scales DEFAULT_FAULT_RATES, see `scaleFaultRates`. */
  readonly faultRate?: number
  /** Single fault rates, applied over the ones `faultRate` (or the defaults) give. */
  readonly faults?: Partial<FaultRates>
  /** Seeds the regional weather, episodes and faults; the same seed gives the same data. Default 1. */
  readonly seed?: number
  readonly clock?: () => number
  /** Simulated seconds per wall-clock second; default 1. */
  readonly timeScale?: number
  /** Wait between reconnection attempts, ms; default RECONNECT_PERIOD_MS. */
  readonly reconnectPeriodMs?: number
  /** How long `stop()` waits for buffered readings to go out, ms; default STOP_FLUSH_TIMEOUT_MS. */
  readonly stopFlushTimeoutMs?: number
}

export interface BackfillOptions {
  /** Days of history before the first live reading. */
  readonly days: number
  /** Readings per batch message, 1–MAX_BATCH_READINGS (default). */
  readonly batchSize?: number
}

export interface FleetStats {
  readonly devices: number
  /** Devices with a live MQTT connection and not in a simulated outage. */
  readonly connected: number
  /** Live readings measured. */
  readonly readings: number
  /** Telemetry messages handed to MQTT (single readings and batches, backfill included). */
  readonly published: number
  /** Readings whose message the broker acknowledged (backfill included). */
  readonly acked: number
  /** Batch messages the broker acknowledged (replays and backfill). */
  readonly batches: number
  /** Readings waiting in device buffers for an acknowledgement. */
  readonly buffered: number
  /** Readings dropped because a device buffer was full. */
  readonly dropped: number
  /** Simulated outages begun. */
  readonly outages: number
  /** Backfilled readings acknowledged. */
  readonly backfilled: number
}

export interface Fleet {
  /** Connects every device and starts measuring. Resolves at once; devices keep retrying if the broker is down. */
  start(): Promise<void>
  /** Sends what is buffered (up to stopFlushTimeoutMs), publishes offline status, disconnects. */
  stop(): Promise<void>
  stats(): FleetStats
  /** Publishes `days` of history before the first live reading as batches; resolves with the count acknowledged. */
  backfill(options: BackfillOptions): Promise<{ readings: number }>
}

export class FleetError extends Error {
  readonly code: 'FLEET_OPTIONS' | 'FLEET_NOT_STARTED' | 'FLEET_STOPPED'
  constructor(code: FleetError['code'], message: string) {
    super(message)
    this.name = 'FleetError'
    this.code = code
  }
}

/** Device contract: one reading a minute. */
export const DEFAULT_SIM_INTERVAL_S = 60
/** Firmware string in the online status, so operators can tell simulated devices apart. */
export const SIM_FIRMWARE = 'skolluft-sim/0.1'
/** A device keeps a day of readings while offline (device contract: store-and-forward, 24 h). */
/** The first live readings of a starting fleet are spread over this long. */
export const FIRST_READING_SPREAD_MS = 10_000
export const BUFFER_SPAN_MS = 24 * 3_600_000
/** Real devices back off a few seconds between reconnection attempts. */
export const RECONNECT_PERIOD_MS = 5_000
export const STOP_FLUSH_TIMEOUT_MS = 5_000
/** Keepalive 30 s: the broker notices a dead device (and publishes its will) within 45 s (MQTT-3.1.2-24). */
const KEEPALIVE_S = 30
const CONNECT_TIMEOUT_MS = 10_000
/** How long a simulated outage waits for the message in flight to be acknowledged before cutting the line. */
const OUTAGE_SETTLE_MS = 2_000
const END_TIMEOUT_MS = 2_000
/**
 * The gateway refills each device's publish bucket at 5 msg/s with a burst of 200 (gateway limits.ts);
 * a backfill sends its first 100 batches back to back and then paces itself below the refill rate.
 */
const BACKFILL_UNPACED_MESSAGES = 100
const BACKFILL_PACE_MS = 250
const OFFLINE_POLL_MS = 100

/** Waits for `promise` at most `ms`; undefined on timeout. Clears its timer so nothing lingers after stop(). */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms), undefined)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

const ONLINE_PAYLOAD = JSON.stringify({ state: 'online', fw: SIM_FIRMWARE })
const OFFLINE_PAYLOAD = JSON.stringify({ state: 'offline' })

interface PendingReading {
  readonly ts: number
  readonly seq: number
  readonly values: MetricValues
}

interface InFlight {
  readonly client: MqttClient
  readonly settle: (ok: boolean) => void
}

interface DeviceState {
  readonly device: SimDevice
  readonly topics: { readonly telemetry: string; readonly status: string; readonly config: string }
  readonly site: SiteProfile
  readonly faults: FaultProfile
  readonly phaseMs: number
  intervalMs: number
  /** Simulated time of the next reading. */
  nextTs: number
  /** Time of the first live reading; backfilled history ends just before it. */
  liveStart: number | null
  seq: number
  pending: PendingReading[]
  client: MqttClient | null
  outageEnd: number | null
  timer: NodeJS.Timeout | null
  /** Until the device has booted and connected for the first time. */
  bootTimer: NodeJS.Timeout | null
  draining: boolean
  drainDone: Promise<void>
  /** Publishes in flight, each with the client it went out on. */
  readonly inFlight: Set<InFlight>
  /** A simulated outage cutting the line, until done. */
  cutting: Promise<void> | null
  errorLogged: boolean
  overflowLogged: boolean
}

export function createFleet(options: FleetOptions): Fleet {
  const log = options.log.child({ module: 'firmware-sim' })
  const clock = options.clock ?? Date.now
  const timeScale = options.timeScale ?? 1
  const intervalS = options.intervalS ?? DEFAULT_SIM_INTERVAL_S
  const seed = options.seed ?? 1
  const reconnectPeriod = options.reconnectPeriodMs ?? RECONNECT_PERIOD_MS
  const stopFlushTimeoutMs = options.stopFlushTimeoutMs ?? STOP_FLUSH_TIMEOUT_MS
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) {
    throw new FleetError('FLEET_OPTIONS', `timeScale must be a positive number, got ${timeScale}`)
  }
  if (!Number.isInteger(intervalS) || intervalS < 1 || intervalS > 3600) {
    throw new FleetError('FLEET_OPTIONS', `intervalS must be an integer 1–3600, got ${intervalS}`)
  }
  const rates: FaultRates = {
    ...(options.faultRate === undefined ? DEFAULT_FAULT_RATES : scaleFaultRates(options.faultRate)),
    ...options.faults,
  }

  const t0 = clock()
  const simNow = () => t0 + (clock() - t0) * timeScale

  const counters = { readings: 0, published: 0, acked: 0, batches: 0, dropped: 0, outages: 0, backfilled: 0 }
  let running = false
  let stopped = false

  const seen = new Set<string>()
  const states: DeviceState[] = options.devices.map((device) => {
    if (seen.has(device.deviceId)) throw new FleetError('FLEET_OPTIONS', `device ${device.deviceId} is listed twice`)
    seen.add(device.deviceId)
    const intervalMs = intervalS * 1000
    return {
      device,
      topics: {
        telemetry: deviceTopic(device.deviceId, 'telemetry'),
        status: deviceTopic(device.deviceId, 'status'),
        config: deviceTopic(device.deviceId, 'config'),
      },
      site: siteProfile(device, seed),
      faults: faultProfile(device.deviceId, rates, seed),
      // Whole seconds, spread over the interval so the fleet does not publish all at once.
      phaseMs: (hash(hashString(device.deviceId), seed) % intervalS) * 1000,
      intervalMs,
      nextTs: 0,
      liveStart: null,
      seq: 0,
      pending: [],
      client: null,
      outageEnd: null,
      timer: null,
      bootTimer: null,
      draining: false,
      drainDone: Promise.resolve(),
      inFlight: new Set(),
      cutting: null,
      errorLogged: false,
      overflowLogged: false,
    }
  })

  function isOnline(dev: DeviceState): boolean {
    return dev.client?.connected === true && dev.outageEnd === null
  }

  function gridAtOrAfter(dev: DeviceState, t: number): number {
    return dev.phaseMs + Math.ceil((t - dev.phaseMs) / dev.intervalMs) * dev.intervalMs
  }

  function measure(dev: DeviceState, ts: number): MetricValues {
    return applyFaults(dev.faults, ts, sampleAt(dev.site, ts), (t) => sampleAt(dev.site, t))
  }

  // -- MQTT -------------------------------------------------------------------------------------

  function connectDevice(dev: DeviceState): void {
    const { device, topics } = dev
    const client = connect(options.mqttUrl, {
      clientId: device.deviceId,
      username: device.deviceId,
      password: device.password,
      clean: false,
      protocolVersion: 4,
      keepalive: KEEPALIVE_S,
      reconnectPeriod,
      // A device keeps trying after "server unavailable" (the gateway caps logins in progress).
      reconnectOnConnackError: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      will: { topic: topics.status, payload: Buffer.from(OFFLINE_PAYLOAD), qos: 1, retain: true },
    })
    dev.client = client
    client.on('connect', (connack) => {
      if (dev.client !== client) return
      dev.errorLogged = false
      log.debug({ deviceId: device.deviceId, sessionPresent: connack.sessionPresent }, 'device connected')
      if (!connack.sessionPresent) {
        client.subscribe(topics.config, { qos: 1 }, (error) => {
          if (error) log.warn({ deviceId: device.deviceId, err: error.message }, 'config subscription failed')
        })
      }
      client.publish(topics.status, ONLINE_PAYLOAD, { qos: 1, retain: true }, (error) => {
        if (error) log.debug({ deviceId: device.deviceId, err: error.message }, 'online status not acknowledged')
      })
      kick(dev)
    })
    client.on('message', (topic, payload) => {
      if (topic === topics.config) applyConfig(dev, payload)
    })
    client.on('error', (error) => {
      // Refused logins and unreachable brokers repeat every reconnect period; say it once per streak.
      const fields = { deviceId: device.deviceId, err: error.message }
      if (dev.errorLogged) log.debug(fields, 'device connection error')
      else log.warn(fields, 'device connection error')
      dev.errorLogged = true
    })
  }

  function applyConfig(dev: DeviceState, payload: Buffer): void {
    let json: unknown
    try {
      json = JSON.parse(payload.toString('utf8'))
    } catch {
      log.warn({ deviceId: dev.device.deviceId }, 'config is not JSON; ignored')
      return
    }
    const config = DeviceConfig.safeParse(json)
    if (!config.success) {
      log.warn({ deviceId: dev.device.deviceId }, 'config does not match the device contract; ignored')
      return
    }
    const intervalMs = config.data.interval_s * 1000
    if (intervalMs === dev.intervalMs) return
    const last = dev.nextTs - dev.intervalMs
    dev.intervalMs = intervalMs
    log.info({ deviceId: dev.device.deviceId, intervalS: config.data.interval_s }, 'interval changed by config')
    if (dev.timer) {
      clearTimeout(dev.timer)
      dev.nextTs = last + intervalMs
      schedule(dev)
    }
  }

  /** Publishes one telemetry payload QoS 1; true once the broker acknowledged it. */
  function send(dev: DeviceState, payload: string): Promise<boolean> {
    const client = dev.client
    if (client === null || !isOnline(dev)) return Promise.resolve(false)
    counters.published += 1
    return new Promise<boolean>((resolve) => {
      // Settles once: from the PUBACK callback, or with false when the client is abandoned (a late
      // callback from an abandoned client then finds the entry gone and does nothing).
      const entry: InFlight = {
        client,
        settle: (ok) => {
          if (dev.inFlight.delete(entry)) resolve(ok)
        },
      }
      dev.inFlight.add(entry)
      client.publish(dev.topics.telemetry, payload, { qos: 1 }, (error) => {
        if (error) log.debug({ deviceId: dev.device.deviceId, err: error.message }, 'telemetry not acknowledged')
        entry.settle(!error)
      })
    })
  }

  function inFlightOn(dev: DeviceState, client: MqttClient): InFlight[] {
    return [...dev.inFlight].filter((entry) => entry.client === client)
  }

  /** Gives up on a client: its publishes in flight count as not sent and stay in the buffer. */
  function abandon(dev: DeviceState, client: MqttClient): void {
    for (const entry of inFlightOn(dev, client)) entry.settle(false)
  }

  async function endClient(client: MqttClient, graceful: boolean): Promise<void> {
    if (!graceful) {
      // No DISCONNECT: to the broker this is a lost connection, so it publishes the will [MQTT-3.1.2-8].
      client.end(true)
      return
    }
    const ended = new Promise<boolean>((resolve) => client.end(false, {}, () => resolve(true)))
    if ((await withTimeout(ended, END_TIMEOUT_MS)) === undefined) client.end(true)
  }

  // -- store-and-forward ------------------------------------------------------------------------

  function kick(dev: DeviceState): void {
    if (dev.draining || !isOnline(dev) || dev.pending.length === 0) return
    dev.draining = true
    dev.drainDone = drain(dev)
  }

  /** Sends the buffer oldest first: one reading as a single message, more as batches. */
  async function drain(dev: DeviceState): Promise<void> {
    try {
      while (isOnline(dev) && dev.pending.length > 0) {
        const chunk = dev.pending.slice(0, MAX_BATCH_READINGS)
        const last = chunk.at(-1)
        if (last === undefined) break
        const payload =
          chunk.length === 1
            ? JSON.stringify(formatTelemetryReading(last))
            : JSON.stringify({ readings: chunk.map((r) => formatTelemetryReading(r)) })
        if (!(await send(dev, payload))) break
        // Drop what was acknowledged. The buffer may have overflowed meanwhile, so go by seq, not by count.
        let n = 0
        while (n < dev.pending.length && (dev.pending[n]?.seq ?? Number.POSITIVE_INFINITY) <= last.seq) n += 1
        dev.pending.splice(0, n)
        counters.acked += chunk.length
        if (chunk.length > 1) counters.batches += 1
      }
    } catch (error) {
      log.error({ deviceId: dev.device.deviceId, err: error }, 'sending buffered readings failed')
    } finally {
      dev.draining = false
    }
  }

  // -- live measurement -------------------------------------------------------------------------

  function schedule(dev: DeviceState): void {
    const delay = Math.max(0, (dev.nextTs - simNow()) / timeScale)
    dev.timer = setTimeout(() => tick(dev), delay)
  }

  function tick(dev: DeviceState): void {
    dev.timer = null
    if (!running) return
    const ts = dev.nextTs
    dev.nextTs = gridAtOrAfter(dev, ts + 1)
    if (dev.outageEnd !== null && ts >= dev.outageEnd) endOutage(dev)
    // A device that boots inside a fault window starts healthy: the window began before it was on.
    const window = dev.outageEnd === null ? outageAt(dev.faults, ts) : null
    const outage = window !== null && window.start >= (dev.liveStart ?? ts) ? window : null
    if (outage) beginOutage(dev, ts, outage.end)

    dev.pending.push({ ts, seq: dev.seq, values: measure(dev, ts) })
    dev.seq += 1
    counters.readings += 1
    const limit = Math.ceil(BUFFER_SPAN_MS / dev.intervalMs)
    if (dev.pending.length > limit) {
      const drop = dev.pending.length - limit
      dev.pending.splice(0, drop)
      counters.dropped += drop
      if (!dev.overflowLogged)
        log.warn({ deviceId: dev.device.deviceId, limit }, 'buffer full; dropping oldest readings')
      dev.overflowLogged = true
    }
    kick(dev)
    schedule(dev)
  }

  function beginOutage(dev: DeviceState, ts: number, end: number): void {
    dev.outageEnd = end
    counters.outages += 1
    log.info({ deviceId: dev.device.deviceId, minutes: Math.round((end - ts) / 60_000) }, 'simulated outage')
    const client = dev.client
    dev.client = null
    if (client === null) return
    // Let the message in flight be acknowledged first (a real outage would not wait, but then the
    // replay might repeat it, and the tests hold the simulator to "nothing doubled").
    dev.cutting = cutAfterSettle(dev, client)
      .catch((error: unknown) => log.error({ deviceId: dev.device.deviceId, err: error }, 'simulated outage failed'))
      .finally(() => {
        dev.cutting = null
      })
  }

  async function cutAfterSettle(dev: DeviceState, client: MqttClient): Promise<void> {
    const deadline = Date.now() + OUTAGE_SETTLE_MS
    while (inFlightOn(dev, client).length > 0 && Date.now() < deadline) await sleep(10)
    abandon(dev, client)
    await endClient(client, false)
  }

  function endOutage(dev: DeviceState): void {
    dev.outageEnd = null
    log.info({ deviceId: dev.device.deviceId, buffered: dev.pending.length }, 'simulated outage over')
    if (dev.client === null && running) connectDevice(dev)
  }

  // -- public -----------------------------------------------------------------------------------

  async function start(): Promise<void> {
    if (stopped) throw new FleetError('FLEET_STOPPED', 'a stopped fleet cannot be started again')
    if (running) return
    running = true
    const now = simNow()
    for (const dev of states) {
      // A device measures once as it boots (spread over FIRST_READING_SPREAD_MS so the fleet does not
      // publish at one instant), then on its grid; the map has every site within seconds of a start.
      const first = Math.floor(now / 1000) * 1000 + (dev.phaseMs % FIRST_READING_SPREAD_MS)
      dev.nextTs = Math.min(first, gridAtOrAfter(dev, now))
      dev.liveStart = dev.nextTs
      // Devices boot (and log in) spread over the same window rather than all at once: 150 scrypt-checked
      // logins in one instant timed out at the gateway ("connack timeout") on a busy first start.
      dev.bootTimer = setTimeout(() => {
        dev.bootTimer = null
        if (running && dev.client === null && dev.outageEnd === null) connectDevice(dev)
      }, dev.phaseMs % FIRST_READING_SPREAD_MS)
      schedule(dev)
    }
    log.info({ devices: states.length, intervalS, timeScale, rates }, 'simulated fleet started')
  }

  async function stop(): Promise<void> {
    if (stopped) return
    stopped = true
    running = false
    for (const dev of states) {
      if (dev.timer) clearTimeout(dev.timer)
      dev.timer = null
      if (dev.bootTimer) clearTimeout(dev.bootTimer)
      dev.bootTimer = null
    }
    let lost = 0
    await Promise.all(
      states.map(async (dev) => {
        const deadline = Date.now() + stopFlushTimeoutMs
        while (isOnline(dev) && (dev.pending.length > 0 || dev.draining) && Date.now() < deadline) {
          kick(dev)
          await withTimeout(dev.drainDone, deadline - Date.now())
        }
        if (dev.cutting) await dev.cutting
        const client = dev.client
        dev.client = null
        if (client !== null) {
          const online = client.connected && dev.outageEnd === null
          if (online) {
            // A clean DISCONNECT suppresses the will, so say "offline" ourselves.
            await withTimeout(
              client.publishAsync(dev.topics.status, OFFLINE_PAYLOAD, { qos: 1, retain: true }).catch(() => undefined),
              END_TIMEOUT_MS,
            )
          }
          abandon(dev, client)
          await endClient(client, online)
        }
        lost += dev.pending.length
      }),
    )
    log.info({ ...stats(), lost }, 'simulated fleet stopped')
  }

  function stats(): FleetStats {
    let buffered = 0
    let connected = 0
    for (const dev of states) {
      buffered += dev.pending.length
      if (isOnline(dev)) connected += 1
    }
    return { devices: states.length, connected, buffered, ...counters }
  }

  async function backfillDevice(dev: DeviceState, days: number, batchSize: number): Promise<number> {
    const end = dev.liveStart ?? gridAtOrAfter(dev, simNow())
    const interval = dev.intervalMs
    const count = Math.floor((days * 86_400_000) / interval)
    let sent = 0
    let messages = 0
    for (let first = 0; first < count; first += batchSize) {
      const readings: Record<string, unknown>[] = []
      for (let i = first; i < Math.min(count, first + batchSize); i += 1) {
        const ts = end - (count - i) * interval
        readings.push(formatTelemetryReading({ ts, values: measure(dev, ts) }))
      }
      const payload = JSON.stringify({ readings })
      if (messages >= BACKFILL_UNPACED_MESSAGES) await sleep(BACKFILL_PACE_MS)
      while (!(await send(dev, payload))) {
        if (stopped) throw new FleetError('FLEET_STOPPED', 'the fleet stopped during the backfill')
        await sleep(OFFLINE_POLL_MS)
      }
      messages += 1
      sent += readings.length
      counters.acked += readings.length
      counters.batches += 1
      counters.backfilled += readings.length
    }
    return sent
  }

  async function backfill({ days, batchSize = MAX_BATCH_READINGS }: BackfillOptions): Promise<{ readings: number }> {
    if (!running) throw new FleetError('FLEET_NOT_STARTED', 'start the fleet before backfilling')
    if (!(days > 0) || !Number.isFinite(days))
      throw new FleetError('FLEET_OPTIONS', `days must be positive, got ${days}`)
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_READINGS) {
      throw new FleetError('FLEET_OPTIONS', `batchSize must be an integer 1–${MAX_BATCH_READINGS}, got ${batchSize}`)
    }
    const started = Date.now()
    const counts = await Promise.all(states.map((dev) => backfillDevice(dev, days, batchSize)))
    const readings = counts.reduce((a, b) => a + b, 0)
    log.info({ days, readings, ms: Date.now() - started }, 'simulated history backfilled')
    return { readings }
  }

  return { start, stop, stats, backfill }
}
