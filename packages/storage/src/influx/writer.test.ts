import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { silentLogger } from '@skolluft/runtime'
import { tempDir } from '@skolluft/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  type ExportedSeries,
  type InfluxFront,
  startInfluxFront,
  startVictoriaMetrics,
  type TestVictoriaMetrics,
  victoriaMetricsAvailable,
} from '../../../../test/support/victoria-metrics.ts'
import type { StoredReading } from '../types.ts'
import { readingLine } from './line-protocol.ts'
import { createInfluxWriter, type InfluxWriter, type InfluxWriterOptions } from './writer.ts'

/** 2025-01-01T00:00Z: in the past (VictoriaMetrics drops samples more than two days ahead of its clock). */
const BASE_TS = 1_735_689_600_000
const DEVICES = 20

/** Reading number `n` of a stream: device n % DEVICES, one per second per device, `seq` = n (the write order). */
function streamReading(n: number): StoredReading {
  const device = n % DEVICES
  return {
    deviceId: `aq-${device}`,
    siteId: device % 4 === 0 ? null : `site-${device % 4}`,
    ts: BASE_TS + Math.floor(n / DEVICES) * 1_000,
    seq: n,
    values: { pm25: (n % 997) / 10, rh: 40 + (n % 50) },
    receivedAt: BASE_TS + n,
    expectedPerHour: 60,
  }
}

/** Samples per `<device>@<ts>` of one exported metric. */
function samplesByKey(series: readonly ExportedSeries[], name: string): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const s of series) {
    if (s.metric.__name__ !== name) continue
    s.timestamps.forEach((ts, i) => {
      const key = `${s.metric.device}@${ts}`
      const list = out.get(key) ?? []
      list.push(s.values[i] ?? Number.NaN)
      out.set(key, list)
    })
  }
  return out
}

/** `seq` values in the order the server first accepted them (a replayed request repeats some; keep the first). */
function firstAcceptedSeqs(front: InfluxFront): number[] {
  const seen = new Set<number>()
  const order: number[] = []
  for (const request of front.accepted) {
    for (const line of request) {
      const m = / (?:.*,)?seq=(\d+)i/.exec(line)
      if (m === null) continue
      const seq = Number(m[1])
      if (seen.has(seq)) continue
      seen.add(seq)
      order.push(seq)
    }
  }
  return order
}

describe.runIf(victoriaMetricsAvailable())('InfluxDB writer against VictoriaMetrics', () => {
  let vm: TestVictoriaMetrics
  let dir: { path: string; cleanup: () => Promise<void> }
  const writers: InfluxWriter[] = []
  const fronts: InfluxFront[] = []

  beforeEach(async () => {
    dir = await tempDir('skolluft-influx-writer-')
    vm = await startVictoriaMetrics()
  })
  afterEach(async () => {
    for (const writer of writers.splice(0)) await writer.close()
    for (const front of fronts.splice(0)) await front.close()
    await vm.close()
    await dir.cleanup()
  })

  function writer(url: string, overrides: Partial<InfluxWriterOptions> = {}): InfluxWriter {
    const w = createInfluxWriter({
      url,
      token: 'test-token',
      org: 'skolluft',
      bucket: 'readings',
      spoolPath: join(dir.path, 'influx-spool.db'),
      log: silentLogger(),
      // Short delays so an outage of a second or two is over within the test.
      retryBaseDelayMs: 50,
      retryMaxDelayMs: 400,
      requestTimeoutMs: 2_000,
      ...overrides,
    })
    writers.push(w)
    return w
  }

  async function front(options: Parameters<typeof startInfluxFront>[1] = {}): Promise<InfluxFront> {
    const f = await startInfluxFront(vm.url, options)
    fronts.push(f)
    return f
  }

  it('writes lines once, with their values and tags; writes of one turn share a request', async () => {
    const f = await front()
    const w = writer(f.url)
    const odd: StoredReading = { ...streamReading(0), deviceId: 'dev ice,a=b', siteId: 'x=y z' }
    const readings = [odd, ...Array.from({ length: 39 }, (_, i) => streamReading(i + 1))]
    // Four writes in one event-loop turn: one request.
    await Promise.all([0, 10, 20, 30].map((from) => w.write(readings.slice(from, from + 10).map(readingLine))))
    expect(f.accepted.map((r) => r.length)).toEqual([40])
    // A write larger than a request is split (5000 lines a request).
    const big = Array.from({ length: 12_000 }, (_, i) => readingLine(streamReading(100 + i)))
    await w.write(big)
    expect(f.accepted.slice(1).map((r) => r.length)).toEqual([5_000, 5_000, 2_000])
    expect(w.stats()).toMatchObject({ written: 12_040, spooled: 0, replayed: 0, spoolDepth: 0, state: 'direct' })

    const series = await vm.exportSeries('{__name__=~"reading_.+"}')
    const pm25 = samplesByKey(series, 'reading_pm25')
    expect(pm25.size).toBe(12_040)
    for (const [key, values] of pm25) expect(values, key).toHaveLength(1)
    for (const r of [...readings.slice(1), streamReading(100), streamReading(12_099)]) {
      expect(pm25.get(`${r.deviceId}@${r.ts}`)).toEqual([r.values.pm25])
    }
    // Escaped tags arrive as written; a reading at no site has no site label.
    const oddSeq = series.find((s) => s.metric.__name__ === 'reading_seq' && s.metric.device === 'dev ice,a=b')
    expect(oddSeq).toMatchObject({ metric: { site: 'x=y z' }, values: [0], timestamps: [BASE_TS] })
    const noSite = series.find((s) => s.metric.__name__ === 'reading_rh' && s.metric.device === 'aq-4')
    expect(noSite?.metric.site).toBeUndefined()
    const received = samplesByKey(series, 'reading_received_at')
    expect(received.get(`aq-1@${BASE_TS}`)).toEqual([BASE_TS + 1])
  })

  it('loses nothing when the server is killed mid-stream and comes back, and keeps the write order', async () => {
    const f = await front()
    const w = writer(f.url)
    const total = 20_000
    const perWrite = 100
    const pending: Promise<void>[] = []
    let outage: Promise<void> = Promise.resolve()
    let restored: Promise<void> = Promise.resolve()
    const started = Date.now()
    for (let n = 0; n < total; n += perWrite) {
      pending.push(w.write(Array.from({ length: perWrite }, (_, i) => readingLine(streamReading(n + i)))))
      if (n === 6_000) {
        // The crash: connections drop mid-request and new ones are refused; then the process is SIGKILLed.
        // VictoriaMetrics acknowledges before its data is on disk (see test/support/victoria-metrics.ts), so it
        // persists what it acknowledged first: what is tested here is the writer, not VictoriaMetrics.
        outage = (async () => {
          await f.cut()
          await vm.persist()
          await vm.stop({ signal: 'SIGKILL' })
        })()
      }
      if (n === 14_000) {
        restored = (async () => {
          await outage
          await vm.restart()
          await f.restore()
        })()
      }
      await sleep(10)
    }
    // Every write is durable (sent or spooled) although the server was away for part of the stream.
    await Promise.all(pending)
    await restored
    const streamMs = Date.now() - started
    expect(await w.drain(15_000)).toBe(true)
    const stats = w.stats()
    expect(stats.spooled).toBeGreaterThan(0)
    expect(stats.failures).toBeGreaterThan(0)
    expect(stats).toMatchObject({ spoolDepth: 0, refused: 0, state: 'direct' })
    expect(stats.written + stats.replayed).toBeGreaterThanOrEqual(total)

    const series = await vm.exportSeries('{__name__=~"reading_(pm25|rh|seq)"}')
    const pm25 = samplesByKey(series, 'reading_pm25')
    const rh = samplesByKey(series, 'reading_rh')
    const seq = samplesByKey(series, 'reading_seq')
    let replayedKeys = 0
    const missing: string[] = []
    for (let n = 0; n < total; n++) {
      const r = streamReading(n)
      const key = `${r.deviceId}@${r.ts}`
      const values = pm25.get(key)
      if (values === undefined) {
        missing.push(key)
        continue
      }
      // VictoriaMetrics keeps a replayed point as a second sample; InfluxDB would overwrite it with the same values.
      if (values.length > 1) replayedKeys++
      expect(new Set(values), key).toEqual(new Set([r.values.pm25]))
      expect(new Set(rh.get(key)), key).toEqual(new Set([r.values.rh]))
      expect(new Set(seq.get(key)), key).toEqual(new Set([n]))
    }
    expect(missing).toEqual([])
    expect(pm25.size).toBe(total)
    // The server saw the lines in write order (first acceptance of each; replays repeat a batch already seen).
    expect(firstAcceptedSeqs(f)).toEqual(Array.from({ length: total }, (_, n) => n))
    console.info(
      `outage test: ${total} readings in ${streamMs} ms, ${stats.written} written directly, ${stats.spooled} spooled, ` +
        `${stats.replayed} replayed, ${stats.failures} failed requests, ${replayedKeys} keys stored twice`,
    )
  })

  it('moves a line the server refuses (400) to the refused table and writes the good ones', async () => {
    const f = await front({ refuse: (line) => (line.includes('device=broken') ? 'invalid field format' : null) })
    const w = writer(f.url)
    const good = [0, 1, 2, 3].map((n) => readingLine(streamReading(n)))
    const bad = 'reading,device=broken pm25= 1735689600000'
    await w.write([good[0] ?? '', good[1] ?? '', bad, good[2] ?? ''])
    await w.write([good[3] ?? ''])
    expect(await w.drain(10_000)).toBe(true)
    expect(w.stats()).toMatchObject({ refused: 1, spoolDepth: 0, state: 'direct' })
    const [refused, ...more] = w.refusedLines()
    expect(more).toEqual([])
    expect(refused).toMatchObject({ line: bad, status: 400 })
    expect(refused?.reason).toContain(`unable to parse '${bad}': invalid field format`)
    expect(w.stats().lastError).toMatchObject({ status: 400 })
    const pm25 = samplesByKey(await vm.exportSeries('{__name__="reading_pm25"}'), 'reading_pm25')
    expect([...pm25.keys()].sort()).toEqual([0, 1, 2, 3].map((n) => `aq-${n}@${BASE_TS}`))
    for (const values of pm25.values()) expect(values).toHaveLength(1)
    // The next write goes straight through.
    await w.write([readingLine(streamReading(4))])
    expect(w.stats().state).toBe('direct')
  })

  it('moves a point InfluxDB drops in a partial write (422, e.g. beyond the retention) to the refused table', async () => {
    const f = await front({
      refuse: (line) => (line.includes('device=old') ? 'points beyond retention policy' : null),
      refuseStatus: 422,
    })
    const w = writer(f.url)
    const good = [0, 1, 2].map((n) => readingLine(streamReading(n)))
    const old = 'reading,device=old pm25=1 1000000000000'
    await w.write([good[0] ?? '', old, good[1] ?? '', good[2] ?? ''])
    expect(await w.drain(10_000)).toBe(true)
    // Refused once, not retried: the spool's head is not blocked and the next write goes straight through.
    expect(w.stats()).toMatchObject({ refused: 1, spoolDepth: 0, state: 'direct' })
    expect(w.refusedLines()).toEqual([
      expect.objectContaining({ line: old, status: 422, reason: expect.stringContaining('beyond retention') }),
    ])
    await w.write([readingLine(streamReading(3))])
    expect(w.stats()).toMatchObject({ refused: 1, spoolDepth: 0, state: 'direct' })
    const pm25 = samplesByKey(await vm.exportSeries('{__name__="reading_pm25"}'), 'reading_pm25')
    expect([...pm25.keys()].sort()).toEqual([0, 1, 2, 3].map((n) => `aq-${n}@${BASE_TS}`))
  })

  it('splits a batch the server finds too large (413)', async () => {
    const f = await front({ maxLines: 700 })
    const w = writer(f.url)
    await w.write(Array.from({ length: 3_000 }, (_, n) => readingLine(streamReading(n))))
    expect(await w.drain(10_000)).toBe(true)
    expect(w.stats()).toMatchObject({ refused: 0, spoolDepth: 0 })
    expect(Math.max(...f.accepted.map((r) => r.length))).toBeLessThanOrEqual(700)
    expect(firstAcceptedSeqs(f)).toEqual(Array.from({ length: 3_000 }, (_, n) => n))
    expect(samplesByKey(await vm.exportSeries('{__name__="reading_pm25"}'), 'reading_pm25').size).toBe(3_000)
  })

  it('spools past the memory bound and still delivers in order', async () => {
    const f = await front()
    const w = writer(f.url, { maxLinesInMemory: 500, maxLinesPerRequest: 200 })
    await Promise.all(
      Array.from({ length: 20 }, (_, k) =>
        w.write(Array.from({ length: 100 }, (_, i) => readingLine(streamReading(k * 100 + i)))),
      ),
    )
    expect(w.stats().spooled).toBeGreaterThan(0)
    expect(await w.drain(10_000)).toBe(true)
    expect(firstAcceptedSeqs(f)).toEqual(Array.from({ length: 2_000 }, (_, n) => n))
  })

  it('keeps the spool when closed; the next writer on the file replays it (and only one may open it)', async () => {
    const f = await front()
    await f.cut()
    const first = writer(f.url, { requestTimeoutMs: 500 })
    const lines = Array.from({ length: 3_000 }, (_, n) => readingLine(streamReading(n)))
    await first.write(lines.slice(0, 1_000))
    await first.write(lines.slice(1_000))
    expect(first.stats()).toMatchObject({ spoolDepth: 3_000, state: 'spooling' })
    expect(() => writer(f.url)).toThrow(/locked|busy/i)
    await first.close()
    await expect(first.write(['reading,device=x pm25=1 1'])).rejects.toMatchObject({ code: 'CLOSED' })

    await f.restore()
    const second = writer(f.url)
    expect(second.stats().state).toBe('spooling')
    expect(await second.drain(10_000)).toBe(true)
    expect(second.stats()).toMatchObject({ replayed: 3_000, spoolDepth: 0, state: 'direct' })
    expect(firstAcceptedSeqs(f)).toEqual(Array.from({ length: 3_000 }, (_, n) => n))
    const pm25 = samplesByKey(await vm.exportSeries('{__name__="reading_pm25"}'), 'reading_pm25')
    expect(pm25.size).toBe(3_000)
  })
})
