import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ALL_TELEMETRY_FILTER, parseSitesFile } from '@skolluft/core'
import type { Fleet } from '@skolluft/firmware-sim'
import type { Gateway } from '@skolluft/gateway'
import type { IngestStorage } from '@skolluft/ingest'
import {
  ConfigError,
  createLogger,
  generateSecret,
  hashSecret,
  type Logger,
  loadConfig,
  unsetIfEmpty,
} from '@skolluft/runtime'
import { createHttpRegistry, createHttpRejectLog, type Storage } from '@skolluft/storage'
import { z } from 'zod'
import { AlertsKeyEnv, loadAlertsKey } from '../alerts-key.ts'
import { CommonConfig, SimEnv } from '../config.ts'
import { openDataDir, openGatewaySpool } from '../data-dir.ts'
import type { CliIo } from '../main.ts'
import { ensureServiceCredentials, loadServiceCredential, serviceUsername } from '../service-credentials.ts'
import { ensureSimDevices, readSimDevices, SIM_DEVICES_FILE } from '../sim-devices.ts'

/** The demo registry shipped with the repository (invented sites, marked demo). */
export const DEMO_SITES_FILE = fileURLToPath(new URL('../../../infra/demo/lund-demo-sites.geojson', import.meta.url))

type Closer = () => Promise<void>

/** The ingest's session exists in the broker before any device connects (see GatewayOptions). */
const INGEST_SESSION = [{ clientId: serviceUsername('ingest'), filter: ALL_TELEMETRY_FILTER }]

/*
 * Each command loads only the services it runs (a stand-alone ingest does not carry the HTTP server,
 * the broker and the simulator in its memory), hence the dynamic imports below.
 */
const loadAlerts = () => import('@skolluft/alerts')
const loadApi = () => import('@skolluft/api')
const loadGateway = () => import('@skolluft/gateway')
const loadIngest = () => import('@skolluft/ingest')
const loadSim = () => import('@skolluft/firmware-sim')
const loadDashboard = () => import('@skolluft/dashboard')

/** The dashboard, bundled in memory (esbuild, ~1 s), for the API to serve at `/`. */
async function dashboardFiles(log: Logger) {
  const started = performance.now()
  const { buildDashboard } = await loadDashboard()
  const bundle = await buildDashboard({ minify: true })
  log.info({ files: bundle.files.size, ms: Math.round(performance.now() - started) }, 'dashboard bundled')
  return bundle.files
}

/**
 * No admin yet: a one-time setup value, printed to the terminal (never to the JSON log, which may be
 * shipped elsewhere) and valid until the first admin exists. Only its hash reaches the API.
 */
async function firstAdminSetup(
  storage: Storage,
  log: Logger,
  io: CliIo,
  port: () => number,
): Promise<{
  hash: string | undefined
  announce: () => void
}> {
  if ((await storage.access.countUsers('admin')) > 0) return { hash: undefined, announce: () => undefined }
  const value = generateSecret()
  return {
    hash: await hashSecret(value),
    announce() {
      log.info('no admin account yet: the one-time setup value is printed on the terminal')
      io.err(
        [
          '',
          'skolluft: no admin account exists yet. Create the first one, either with',
          '  npx skolluft user add --role admin --email <you@example.org>',
          'or, with this one-time setup value (valid until an admin exists, new at every start),',
          `on the map (http://localhost:${port()}, "Skapa den första administratören") or with:`,
          `  curl -X POST http://localhost:${port()}/api/v1/auth/setup -H 'content-type: application/json' \\`,
          `    -d '{"setupToken":"${value}","email":"<you@example.org>","password":"<at least 12 characters>"}'`,
          '',
        ].join('\n'),
      )
    },
  }
}

/** Resolves on SIGINT or SIGTERM, then closes everything in reverse order of start. */
async function runUntilSignal(log: Logger, closers: Closer[]): Promise<number> {
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  log.info({ signal }, 'shutting down')
  let code = 0
  for (const close of closers.reverse()) {
    try {
      await close()
    } catch (error) {
      code = 1
      log.error({ err: error }, 'error during shutdown')
    }
  }
  log.flush()
  return code
}

function backfillInBackground(fleet: Fleet, days: number, log: Logger): void {
  if (days <= 0) return
  fleet.backfill({ days }).then(
    (r) => log.info({ readings: r.readings, days }, 'simulated history backfilled'),
    (error: unknown) => log.error({ err: error }, 'backfill failed'),
  )
}

/**
 * The gateway as the platform runs it: with its durable telemetry spool in the data directory and the
 * ingest's session in place before the first device connects. `close` stops the gateway, then the
 * spool it writes to.
 */
async function startPlatformGateway(
  log: Logger,
  storage: Storage,
  config: { DATA_DIR: string; MQTT_HOST: string; MQTT_PORT: number },
): Promise<{ gateway: Gateway; close: Closer }> {
  const { startGateway } = await loadGateway()
  const spool = await openGatewaySpool(config.DATA_DIR)
  try {
    const gateway = await startGateway({
      log,
      registry: storage.registry,
      host: config.MQTT_HOST,
      port: config.MQTT_PORT,
      durableSubscribers: INGEST_SESSION,
      spool,
    })
    return {
      gateway,
      close: async () => {
        await gateway.close()
        await spool.close()
      },
    }
  } catch (error) {
    await spool.close()
    throw error
  }
}

/** nodemailer options from SMTP_URL: smtps:// is TLS from the start (465), smtp:// uses STARTTLS when offered. */
function smtpOptions(url: string) {
  const parsed = new URL(url)
  const secure = parsed.protocol === 'smtps:'
  const user = decodeURIComponent(parsed.username)
  return {
    host: parsed.hostname,
    port: parsed.port === '' ? (secure ? 465 : 587) : Number(parsed.port),
    secure,
    // With credentials over smtp://, insist on STARTTLS: a password never crosses the network in clear text.
    requireTls: !secure && user !== '',
    ...(user === '' ? {} : { user, pass: decodeURIComponent(parsed.password) }),
  }
}

/** The alerts service with its channels as the environment describes them (SMTP_URL, webhooks, PUBLIC_URL). */
async function startPlatformAlerts(
  log: Logger,
  storage: Storage,
  config: Omit<import('@skolluft/alerts').AlertsEnv, 'MQTT_URL' | 'MQTT_USERNAME' | 'MQTT_PASSWORD'> & {
    DATA_DIR: string
  },
  mqtt: { url: string; username: string; password: string },
  masterKey: Buffer,
) {
  const { alertsSelection, createEmailChannel, createLinks, createWebhookChannel, startAlerts } = await loadAlerts()
  const selection = alertsSelection(config)
  const production = config.NODE_ENV === 'production'
  const email =
    config.SMTP_URL === undefined
      ? undefined
      : createEmailChannel({
          ...smtpOptions(config.SMTP_URL),
          from: config.MAIL_FROM,
          timeoutMs: config.SMTP_TIMEOUT_MS,
        })
  if (email === undefined) log.warn('SMTP_URL is not set: e-mail alerts are recorded as failed deliveries')
  const service = await startAlerts({
    log,
    storage,
    mqtt,
    selection,
    channels: { ...(email ? { email } : {}), webhook: createWebhookChannel({ masterKey, production }) },
    links: createLinks(config.PUBLIC_URL),
    masterKey,
    reminderIntervalMs: config.ALERT_REMINDER_HOURS * 3_600_000,
    leaseMs: config.ALERTS_LEASE_MS,
  })
  return {
    service,
    close: async () => {
      await service.close()
      email?.close()
    },
  }
}

async function importDemoSitesIfEmpty(storage: Storage, log: Logger): Promise<void> {
  if ((await storage.registry.listSites()).length > 0) return
  const { sites, errors } = parseSitesFile(await readFile(DEMO_SITES_FILE, 'utf8'), 'geojson')
  if (errors.length > 0) throw new Error(`demo registry ${DEMO_SITES_FILE} is invalid: ${errors[0]?.message}`)
  const result = await storage.registry.upsertSites(sites)
  log.info({ sites: result.inserted }, 'imported the demo registry (invented sites, marked demo)')
}

/** Everything in one process: gateway, ingest, API and the simulated fleet. The composition root. */
export async function runStart(env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const [
    { ApiEnv, apiListenOptions, startApi },
    { GatewayConfig },
    { startIngest, startQualityChecks },
    { createFleet },
    { AlertsEnv },
  ] = await Promise.all([loadApi(), loadGateway(), loadIngest(), loadSim(), loadAlerts()])
  // Everything `skolluft start` reads from the environment, validated once.
  const StartConfig = CommonConfig.extend(GatewayConfig.shape)
    .extend(ApiEnv.shape)
    .extend(SimEnv.shape)
    .extend(AlertsEnv.omit({ MQTT_URL: true, MQTT_USERNAME: true, MQTT_PASSWORD: true }).shape)
    .extend(AlertsKeyEnv.shape)
  const config = loadConfig(StartConfig, env)
  const log = createLogger({ level: config.LOG_LEVEL })
  const storage = await openDataDir(config, { log, writer: 'start' })
  const closers: Closer[] = [() => storage.close()]
  try {
    if (config.DEMO_SITES) await importDemoSitesIfEmpty(storage, log)
    const credentials = await ensureServiceCredentials(config.DATA_DIR, storage.registry)
    const { gateway, close: closeGateway } = await startPlatformGateway(log, storage, config)
    closers.push(closeGateway)
    const mqttUrl = `mqtt://127.0.0.1:${gateway.port}`
    const ingest = await startIngest({ log, storage, mqtt: { url: mqttUrl, ...credentials.ingest } })
    closers.push(() => ingest.close())
    // Per-reading quality flags (issue 5), off the ingest's hot path; stopped before storage closes.
    const quality = startQualityChecks({ log, storage })
    closers.push(() => quality.close())
    const alertsKey = await loadAlertsKey(config.DATA_DIR, config.ALERTS_KEY)
    // Links in messages point at this process's own API unless PUBLIC_URL says where people reach it.
    const publicUrl = env.PUBLIC_URL === undefined ? `http://localhost:${config.PORT}` : config.PUBLIC_URL
    const alerts = await startPlatformAlerts(
      log,
      storage,
      { ...config, PUBLIC_URL: publicUrl },
      { url: mqttUrl, ...credentials.alerts },
      alertsKey,
    )
    closers.push(alerts.close)
    const listen = apiListenOptions(config, { publicMap: config.DEMO_SITES })
    let port = listen.port
    const setup = await firstAdminSetup(storage, log, io, () => port)
    const api = await startApi({
      log,
      storage,
      ...listen,
      options: { ...listen.options, setupTokenHash: setup.hash },
      dashboard: await dashboardFiles(log),
      live: { url: mqttUrl, ...credentials.api },
      alertsKey,
    })
    port = api.port
    closers.push(() => api.close())
    setup.announce()
    log.info({ http: `http://localhost:${api.port}`, mqtt: `mqtt://localhost:${gateway.port}` }, 'skolluft is running')
    if (config.SIM) {
      const devices = await ensureSimDevices(
        config.DATA_DIR,
        storage.registry,
        await storage.registry.listSites(),
        config.SIM_INTERVAL_S,
      )
      const backfillDays = (await storage.readings.countReadings()) === 0 ? config.SIM_BACKFILL_DAYS : 0
      const fleet = createFleet({
        log,
        mqttUrl,
        devices,
        intervalS: config.SIM_INTERVAL_S,
        faultRate: config.SIM_FAULT_RATE,
        seed: config.SIM_SEED,
      })
      closers.push(() => fleet.stop())
      await fleet.start()
      log.info({ devices: devices.length, intervalS: config.SIM_INTERVAL_S }, 'simulated fleet started')
      // In the background: the live map is up at once; history fills in behind it.
      backfillInBackground(fleet, backfillDays, log)
    }
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined)
    throw error
  }
  return runUntilSignal(log, closers)
}

export async function runGateway(env: NodeJS.ProcessEnv, _io: CliIo): Promise<number> {
  const { GatewayConfig } = await loadGateway()
  const config = loadConfig(CommonConfig.extend(GatewayConfig.shape), env)
  const log = createLogger({ level: config.LOG_LEVEL, name: 'skolluft-gateway' })
  const storage = await openDataDir(config, { log })
  await ensureServiceCredentials(config.DATA_DIR, storage.registry)
  let started: Awaited<ReturnType<typeof startPlatformGateway>>
  try {
    started = await startPlatformGateway(log, storage, config)
  } catch (error) {
    await storage.close()
    throw error
  }
  const { gateway } = started
  log.info({ port: gateway.port, spooled: gateway.stats().spoolEntries }, 'gateway listening')
  return runUntilSignal(log, [() => storage.close(), started.close])
}

/**
 * With REGISTRY_URL (an ingest on another machine than the SQLite file, issue 6), the registry and the reject log are
 * the API's, over HTTP with REGISTRY_TOKEN, and only the readings (InfluxDB) are opened here. The token is tried once
 * before the ingest subscribes, so a wrong URL or token stops it at start rather than holding every acknowledgement.
 */
export async function runIngest(
  env: NodeJS.ProcessEnv,
  io: CliIo,
  options: { readonly leave?: boolean } = {},
): Promise<number> {
  const { IngestConfig, leaveSharedGroup, remoteRegistry, startIngest, startQualityChecks } = await loadIngest()
  const config = loadConfig(CommonConfig.extend(IngestConfig.shape), env)
  if (options.leave === true && config.INGEST_SHARED_GROUP === undefined) {
    throw new ConfigError(['INGEST_SHARED_GROUP: required with --leave (a worker outside a group has none to leave)'])
  }
  const remote = remoteRegistry(config)
  const log = createLogger({ level: config.LOG_LEVEL, name: 'skolluft-ingest' })
  const credential = await loadServiceCredential('ingest', config.DATA_DIR, config)
  // A leave is one-shot: with STORE=influxdb its close waits for InfluxDB to take the retired worker's spool and fails,
  // naming the spool, if it did not (nothing replays that spool once the worker is gone).
  const local = await openDataDir(config, {
    log,
    writer: config.INGEST_CLIENT_ID ?? 'ingest',
    ...(options.leave === true ? { oneShot: true } : {}),
  })
  const storage = remote === undefined ? local : await remoteMetadata(log, local, remote)
  const ingestOptions = {
    log,
    storage,
    mqtt: {
      url: config.MQTT_URL,
      ...credential,
      clientId: config.INGEST_CLIENT_ID,
      sharedGroup: config.INGEST_SHARED_GROUP,
    },
  }
  if (options.leave === true) {
    try {
      const left = await leaveSharedGroup(ingestOptions)
      io.out(
        `${config.INGEST_CLIENT_ID ?? credential.username} left the group ${config.INGEST_SHARED_GROUP}: stored ${left.stats.messages} messages from its session (${left.stats.stored} new readings, ${left.stats.rejected} rejected)${left.sessionPresent ? '' : '; the broker held no session for this client id'}`,
      )
      return 0
    } finally {
      await local.close()
    }
  }
  const ingest = await startIngest(ingestOptions)
  // Closed in reverse order: the quality worker stops before storage closes.
  const quality = startQualityChecks({ log, storage })
  return runUntilSignal(log, [() => local.close(), () => ingest.close(), () => quality.close()])
}

/** The ingest's storage with the registry and rejects of the API at `remote`; closes `local` if the API refuses. */
async function remoteMetadata(
  log: Logger,
  local: Storage,
  remote: { readonly url: string; readonly token: string },
): Promise<IngestStorage> {
  const url = new URL(remote.url)
  if (url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
    log.warn({ registryUrl: url.origin }, 'REGISTRY_URL is plain http: the service token crosses the network readable')
  }
  const registry = createHttpRegistry({ ...remote, log })
  try {
    const revision = await registry.revision()
    log.info({ registryUrl: url.origin, revision }, 'reading the registry and recording rejects through the API')
  } catch (error) {
    await local.close()
    const reason = error instanceof Error ? error.message : String(error)
    throw new ConfigError([`REGISTRY_URL, REGISTRY_TOKEN: the registry could not be read: ${reason}`])
  }
  return { readings: local.readings, registry, rejects: createHttpRejectLog(remote) }
}

export async function runAlerts(env: NodeJS.ProcessEnv, _io: CliIo): Promise<number> {
  const { AlertsEnv } = await loadAlerts()
  const config = loadConfig(CommonConfig.extend(AlertsEnv.shape).extend(AlertsKeyEnv.shape), env)
  const log = createLogger({ level: config.LOG_LEVEL, name: 'skolluft-alerts' })
  const credential = await loadServiceCredential('alerts', config.DATA_DIR, config)
  const storage = await openDataDir(config, { log })
  try {
    const alertsKey = await loadAlertsKey(config.DATA_DIR, config.ALERTS_KEY)
    const alerts = await startPlatformAlerts(log, storage, config, { url: config.MQTT_URL, ...credential }, alertsKey)
    return runUntilSignal(log, [() => storage.close(), alerts.close])
  } catch (error) {
    await storage.close()
    throw error
  }
}

/** Live map events come from the broker at LIVE_MQTT_URL (unset: the map updates on reload only). */
export const LiveEnv = z.object({
  LIVE_MQTT_URL: z.preprocess(
    unsetIfEmpty,
    z.url({ protocol: /^mqtts?$/, error: 'LIVE_MQTT_URL must be an mqtt:// or mqtts:// URL' }).optional(),
  ),
  MQTT_USERNAME: z.string().min(1).optional(),
  MQTT_PASSWORD: z.string().min(1).optional(),
})

export async function runApi(env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const { ApiEnv, apiListenOptions, startApi } = await loadApi()
  const config = loadConfig(CommonConfig.extend(ApiEnv.shape).extend(LiveEnv.shape).extend(AlertsKeyEnv.shape), env)
  const log = createLogger({ level: config.LOG_LEVEL, name: 'skolluft-api' })
  const storage = await openDataDir(config, { log })
  const closers: Closer[] = [() => storage.close()]
  try {
    const alertsKey = await loadAlertsKey(config.DATA_DIR, config.ALERTS_KEY)
    const live =
      config.LIVE_MQTT_URL === undefined
        ? undefined
        : { url: config.LIVE_MQTT_URL, ...(await loadServiceCredential('api', config.DATA_DIR, config)) }
    const listen = apiListenOptions(config)
    let port = listen.port
    const setup = await firstAdminSetup(storage, log, io, () => port)
    const api = await startApi({
      log,
      storage,
      ...listen,
      options: { ...listen.options, setupTokenHash: setup.hash },
      dashboard: await dashboardFiles(log),
      ...(live === undefined ? {} : { live }),
      alertsKey,
    })
    port = api.port
    closers.push(() => api.close())
    setup.announce()
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined)
    throw error
  }
  return runUntilSignal(log, closers)
}

export async function runSim(
  env: NodeJS.ProcessEnv,
  _io: CliIo,
  devicesFile: string | undefined,
  backfillDays: number,
): Promise<number> {
  const [{ IngestConfig }, { createFleet }] = await Promise.all([loadIngest(), loadSim()])
  const config = loadConfig(CommonConfig.extend(IngestConfig.shape).extend(SimEnv.shape), env)
  const log = createLogger({ level: config.LOG_LEVEL, name: 'skolluft-sim' })
  let devices = await readSimDevices(devicesFile ?? join(config.DATA_DIR, SIM_DEVICES_FILE))
  if (devices.length === 0 && devicesFile === undefined) {
    // No fleet yet: register one simulated device per site in the data directory's registry.
    const storage = await openDataDir(config, { log })
    try {
      devices = await ensureSimDevices(
        config.DATA_DIR,
        storage.registry,
        await storage.registry.listSites(),
        config.SIM_INTERVAL_S,
      )
    } finally {
      await storage.close()
    }
  }
  if (devices.length === 0) throw new Error('no simulated devices: import sites first (skolluft sites import <file>)')
  const fleet = createFleet({
    log,
    mqttUrl: config.MQTT_URL,
    devices,
    intervalS: config.SIM_INTERVAL_S,
    faultRate: config.SIM_FAULT_RATE,
    seed: config.SIM_SEED,
  })
  await fleet.start()
  log.info({ devices: devices.length, url: config.MQTT_URL }, 'simulated fleet running')
  backfillInBackground(fleet, backfillDays, log)
  return runUntilSignal(log, [() => fleet.stop()])
}
