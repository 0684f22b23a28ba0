/**
 * Alert latency benchmark (issue 4: "an alert is queued within 5 seconds of the reading that completes its
 * condition").
 *
 *   npm run bench:alerts [-- --sites 150 --trials 20 --background 1]
 *
 * One process, as `skolluft start` runs it: the gateway, the ingest and the alerts service, a real SQLite file.
 * Every site has one device (60 s interval) and a staff member subscribed in-app to every site. Each site's hour
 * H−2 is stored as breaching PM2.5 (EEA "poor", > 50 µg/m³), and H−1 with 59 of its 60 readings, also breaching,
 * written straight to storage (no event, so nothing is evaluated yet). A trial publishes the 60th reading of one
 * site over MQTT (QoS 1): it completes hour H−1, which completes the rule's 2-hour persistence, so that reading is
 * the one that completes the condition. The figure is the time from the publish to the outbox row's creation.
 * Baseline, same run: the time from the same publish to the reading being committed by the ingest.
 *
 * Background load: every device also publishes one reading per `--background` seconds into the current hour
 * (60× a real device's rate at 1 s), so the alerts service keeps re-evaluating every site while the trials run.
 * The services run on a clock shifted so that "now" is one minute into an hour: hour H−1 is then final only
 * when its last reading arrives (not by the 5-minute grace), exactly the case the target describes.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createLinks, startAlerts } from '@skolluft/alerts'
import { deviceTopic, HOUR_MS, METRICS } from '@skolluft/core'
import { startGateway } from '@skolluft/gateway'
import { startIngest } from '@skolluft/ingest'
import { ALERTS_KEY_BYTES, generateSecret, hashSecret, silentLogger } from '@skolluft/runtime'
import { openSqliteStorage, type StoredReading } from '@skolluft/storage'
import { tempDir, waitFor } from '@skolluft/testkit'
import mqtt, { type MqttClient } from 'mqtt'

const { values: args } = parseArgs({
  options: {
    sites: { type: 'string', default: '150' },
    trials: { type: 'string', default: '20' },
    background: { type: 'string', default: '1' },
  },
})
const SITES = Number(args.sites)
const TRIALS = Math.min(Number(args.trials), SITES)
const BACKGROUND_S = Number(args.background)
const TARGET_MS = 5_000
const TRIAL_TIMEOUT_MS = 30_000
const INTERVAL_S = 60

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN

async function main(): Promise<void> {
  const dir = await tempDir('skolluft-bench-alerts-')
  // The services' clock: one minute into an hour (see the header), advancing with real time.
  const realStart = Date.now()
  const shiftedStart = Math.floor(realStart / HOUR_MS) * HOUR_MS + 60_000
  const offset = realStart - shiftedStart
  const clock = () => Date.now() - offset
  const hourNow = Math.floor(shiftedStart / HOUR_MS) * HOUR_MS

  const storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  const closers: (() => Promise<void>)[] = [() => dir.cleanup(), () => storage.close()]
  try {
    const siteIds = Array.from({ length: SITES }, (_, i) => `bench-site-${i}`)
    await storage.registry.upsertSites(
      siteIds.map((id, i) => ({
        id,
        name: `Benchskolan ${i}`,
        kind: 'school' as const,
        municipality: 'Lund',
        lat: 55.6 + (i % 50) * 0.004,
        lon: 13.1 + Math.floor(i / 50) * 0.004,
        demo: true,
      })),
    )
    const devicePassword = generateSecret()
    const deviceHash = await hashSecret(devicePassword)
    for (const [i, siteId] of siteIds.entries()) {
      await storage.registry.addDevice(
        {
          id: `bench-dev-${i}`,
          model: 'bench',
          sensors: [...METRICS],
          intervalS: INTERVAL_S,
          secretHash: deviceHash,
          placement: { siteId, from: 0, indoor: false, heightM: 2 },
        },
        clock(),
      )
    }
    const services: Record<'ingest' | 'alerts', string> = { ingest: generateSecret(), alerts: generateSecret() }
    for (const role of ['ingest', 'alerts'] as const) {
      await storage.registry.upsertServiceAccount({
        username: `svc.${role}`,
        secretHash: await hashSecret(services[role]),
        role,
      })
    }
    const staff = await storage.access.addUser(
      { email: 'staff@bench.test', name: null, role: 'staff', passwordHash: null, sites: [] },
      clock(),
    )
    await storage.alerts.addSubscription({
      userId: staff.id,
      topic: 'breaches',
      channel: 'in_app',
      target: null,
      sites: 'all',
      minSeverity: 'info',
      language: 'sv',
      quietHours: null,
      unsubscribeHash: 'bench',
      createdAt: clock(),
    })

    const gateway = await startGateway({
      log: silentLogger(),
      registry: storage.registry,
      host: '127.0.0.1',
      port: 0,
      limits: { publishRatePerS: 1_000, publishBurst: 1_000, maxPendingVerifications: 1_000 },
    })
    closers.push(() => gateway.close())
    const url = `mqtt://127.0.0.1:${gateway.port}`
    const ingest = await startIngest({
      log: silentLogger(),
      storage,
      clock,
      mqtt: { url, username: 'svc.ingest', password: services.ingest },
    })
    closers.push(() => ingest.close())
    // Started before the trial data exists, so its catch-up on start finds nothing to alert on.
    const alerts = await startAlerts({
      log: silentLogger(),
      storage,
      clock,
      mqtt: { url, username: 'svc.alerts', password: services.alerts },
      selection: { evaluate: ['eea-index', 'se-mkn', 'who2021-aqg'], alert: ['eea-index'] },
      channels: {},
      links: createLinks('https://skolluft.bench'),
      masterKey: Buffer.alloc(ALERTS_KEY_BYTES, 1),
    })
    closers.push(() => alerts.close())

    // Hours H−2 (complete) and H−1 (59 of 60) breaching at every site; the other PM/NO2 values ordinary.
    const reading = (i: number, ts: number, pm25: number): StoredReading => ({
      deviceId: `bench-dev-${i}`,
      siteId: siteIds[i] ?? null,
      ts,
      seq: null,
      values: { pm1: pm25 * 0.7, pm25, pm10: pm25 * 1.4, no2: 20 + (ts % 7), temp: 5, rh: 70 + (ts % 5) },
      receivedAt: clock(),
      expectedPerHour: 3600 / INTERVAL_S,
    })
    const prepared: StoredReading[] = []
    for (let i = 0; i < SITES; i++) {
      for (let m = 0; m < 60; m++) prepared.push(reading(i, hourNow - 2 * HOUR_MS + m * 60_000 + 5_000, 70 + (m % 9)))
      for (let m = 0; m < 59; m++) prepared.push(reading(i, hourNow - HOUR_MS + m * 60_000 + 5_000, 70 + (m % 7)))
    }
    await storage.readings.writeReadings(prepared)

    const clients: MqttClient[] = []
    for (let i = 0; i < SITES; i++) {
      clients.push(
        await mqtt.connectAsync(url, {
          clientId: `bench-dev-${i}`,
          username: `bench-dev-${i}`,
          password: devicePassword,
        }),
      )
    }
    closers.push(async () => {
      for (const c of clients) await c.endAsync(true)
    })
    // Background: every device into the current hour, BACKGROUND_S apart (spread over the period).
    let backgroundSent = 0
    const timers = clients.map((client, i) =>
      setTimeout(
        () => {
          const timer = setInterval(() => {
            const payload = { v: 1, ts: new Date(clock()).toISOString(), pm25: 8, pm10: 12, no2: 15, rh: 70 }
            client.publish(deviceTopic(`bench-dev-${i}`, 'telemetry'), JSON.stringify(payload), { qos: 1 })
            backgroundSent += 1
          }, BACKGROUND_S * 1000)
          timers.push(timer)
        },
        Math.floor((i / SITES) * BACKGROUND_S * 1000),
      ),
    )
    closers.push(async () => {
      for (const t of timers) clearInterval(t)
    })
    // Let the background load reach its steady state.
    await new Promise((r) => setTimeout(r, 5_000))

    const alertMs: number[] = []
    const storeMs: number[] = []
    for (let k = 0; k < TRIALS; k++) {
      const i = Math.floor((k * SITES) / TRIALS)
      const siteId = siteIds[i] ?? ''
      const ts = hourNow - HOUR_MS + 59 * 60_000 + 5_000
      const before = await storage.readings.countReadings({ deviceId: `bench-dev-${i}` })
      const published = clock()
      await clients[i]?.publishAsync(
        deviceTopic(`bench-dev-${i}`, 'telemetry'),
        JSON.stringify({ v: 1, ts: new Date(ts).toISOString(), pm25: 75, pm10: 105, no2: 20, rh: 72 }),
        { qos: 1 },
      )
      // The baseline: the reading is committed (polled; the PUBACK itself waits for the commit).
      const acked = clock()
      await waitFor(
        async () => (await storage.readings.countReadings({ deviceId: `bench-dev-${i}` })) > before,
        `reading of ${siteId} stored`,
        { timeoutMs: TRIAL_TIMEOUT_MS, intervalMs: 5 },
      )
      storeMs.push(acked - published)
      const row = await waitFor(
        async () => {
          const rows = await storage.alerts.listOutbox({ userId: staff.id, limit: 50 })
          return rows.find((r) => r.siteId === siteId)
        },
        `alert for ${siteId} queued`,
        { timeoutMs: TRIAL_TIMEOUT_MS, intervalMs: 5 },
      )
      alertMs.push(row.createdAt - published)
    }

    const sortedAlert = [...alertMs].sort((a, b) => a - b)
    const sortedStore = [...storeMs].sort((a, b) => a - b)
    const stats = alerts.stats()
    const median = (xs: number[]) => percentile(xs, 50)
    console.log(
      `sites ${SITES}, trials ${TRIALS}, background ${SITES / BACKGROUND_S} readings/s (${backgroundSent} sent)`,
    )
    console.log(
      `reading → committed (PUBACK), baseline: median ${median(sortedStore)} ms, p95 ${percentile(sortedStore, 95)} ms`,
    )
    console.log(
      `reading → alert queued: median ${median(sortedAlert)} ms, p95 ${percentile(sortedAlert, 95)} ms, max ${
        sortedAlert.at(-1) ?? Number.NaN
      } ms (target ${TARGET_MS} ms)`,
    )
    console.log(
      `ratio alert/commit (median): ${(median(sortedAlert) / Math.max(1, median(sortedStore))).toFixed(1)}; ` +
        `evaluations ${stats.evaluations}, alert events ${stats.alertEvents}, outbox ${stats.outboxCreated}`,
    )
    console.log(
      `${(sortedAlert.at(-1) ?? Number.POSITIVE_INFINITY) <= TARGET_MS ? 'PASS' : 'FAIL'}: every trial within ${TARGET_MS} ms`,
    )
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined)
  }
}

await main()
