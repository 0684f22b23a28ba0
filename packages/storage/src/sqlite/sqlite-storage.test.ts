import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HOUR_MS } from '@skolluft/core'
import { tempDir } from '@skolluft/testkit'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { describeStorageContract } from '../contract-suite.ts'
import type { Storage, StoredReading } from '../types.ts'
import { MIGRATIONS } from './migrations.ts'
import { openSqliteStorage } from './sqlite-storage.ts'

describeStorageContract('sqlite', async () => {
  const dir = await tempDir()
  const path = join(dir.path, 'skolluft.db')
  return {
    storage: openSqliteStorage({ path }),
    reopen: async () => openSqliteStorage({ path }),
    cleanup: dir.cleanup,
  }
})

describe('SQLite storage', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  let dbPath: string

  beforeEach(async () => {
    dir = await tempDir()
    dbPath = join(dir.path, 'skolluft.db')
  })
  afterEach(async () => {
    await dir.cleanup()
  })

  it('opens in WAL mode with foreign keys on and the schema at the latest version', async () => {
    const storage = openSqliteStorage({ path: dbPath })
    const db = new Database(dbPath, { readonly: true })
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
      expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length)
    } finally {
      db.close()
      await storage.close()
    }
  })

  it('applies migrations once: reopening keeps data and does not re-run them', async () => {
    const first = openSqliteStorage({ path: dbPath, synchronous: 'FULL' })
    await first.registry.upsertServiceAccount({ username: 'ingest', secretHash: 'h', role: 'ingest' })
    await first.close()
    for (let i = 0; i < 3; i++) {
      const again = openSqliteStorage({ path: dbPath })
      expect(await again.registry.getServiceAccount('ingest')).toBeDefined()
      expect(await again.registry.revision()).toBe(1)
      await again.close()
    }
  })

  it('upgrades a version 2 database to the latest, keeping its data', async () => {
    const db = new Database(dbPath)
    for (const step of MIGRATIONS.slice(0, 2)) db.exec(step)
    db.pragma('user_version = 2')
    db.prepare("INSERT INTO service_accounts (username, secret_hash, role) VALUES ('api', 'h', 'api')").run()
    db.close()
    const storage = openSqliteStorage({ path: dbPath })
    try {
      expect(await storage.registry.getServiceAccount('api')).toMatchObject({ role: 'api' })
      const user = await storage.access.addUser(
        { email: 'a@example.org', name: null, role: 'admin', sites: [], passwordHash: null },
        0,
      )
      expect(await storage.access.getUserByEmail('A@example.org')).toEqual(user)
    } finally {
      await storage.close()
    }
    const check = new Database(dbPath, { readonly: true })
    expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length)
    check.close()
  })

  it('lets two connections open a new file at once and both write to it', async () => {
    const a = openSqliteStorage({ path: dbPath })
    const b = openSqliteStorage({ path: dbPath })
    try {
      const ts = Date.UTC(2026, 0, 12)
      const reading = { deviceId: 'dev-1', siteId: null, seq: null, receivedAt: ts, expectedPerHour: 60 }
      await a.readings.writeReadings([{ ...reading, ts, values: { pm25: 1 } }])
      expect(await b.readings.writeReadings([{ ...reading, ts, values: { pm25: 2 } }])).toEqual({
        inserted: 0,
        duplicates: 1,
      })
      await b.readings.writeReadings([{ ...reading, ts: ts + HOUR_MS, values: { pm25: 2 } }])
      expect(await a.readings.countReadings({ deviceId: 'dev-1' })).toBe(2)
      // A reading without a site is stored but belongs to no site.
      expect(await a.readings.countReadings({ siteId: '' })).toBe(0)
      expect((await a.readings.latestByDevice())[0]).toMatchObject({ siteId: null, values: { pm25: 2 } })
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('lets several processes create, migrate and write the same new file at once', async () => {
    const writers = ['proc-a', 'proc-b', 'proc-c']
    const fixture = fileURLToPath(new URL('./concurrent-writer.fixture.ts', import.meta.url))
    // Process start-up (tsx) varies by hundreds of ms; all children open the file at this instant instead.
    const openAt = String(Date.now() + 2000)
    const exits = await Promise.all(
      writers.map(
        (id) =>
          new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
            const child = spawn(process.execPath, ['--import', 'tsx', fixture, dbPath, id, '300', openAt], {
              stdio: ['ignore', 'ignore', 'pipe'],
            })
            let stderr = ''
            child.stderr.on('data', (chunk: Buffer) => {
              stderr += chunk.toString()
            })
            child.on('error', reject)
            child.on('exit', (code) => resolve({ code, stderr }))
          }),
      ),
    )
    expect(exits).toEqual(writers.map(() => ({ code: 0, stderr: '' })))
    const storage = openSqliteStorage({ path: dbPath })
    try {
      for (const id of writers) expect(await storage.readings.countReadings({ deviceId: id })).toBe(300)
      expect(await storage.registry.revision()).toBe(writers.length)
    } finally {
      await storage.close()
    }
  })

  it('fails only the bad call when calls share a group commit', async () => {
    const storage = openSqliteStorage({ path: dbPath })
    try {
      const ts = Date.UTC(2026, 0, 12)
      const good = { deviceId: 'dev-1', siteId: null, seq: null, receivedAt: ts, expectedPerHour: 60 }
      // A value SQLite cannot bind, as a caller bypassing the types could send.
      const bad = { ...good, ts: ts + 1, values: { pm25: { nested: true } } } as unknown as StoredReading
      const [first, broken, third] = await Promise.allSettled([
        storage.readings.writeReadings([{ ...good, ts, values: { pm25: 1 } }]),
        storage.readings.writeReadings([bad]),
        storage.readings.writeReadings([{ ...good, ts: ts + 2, values: { pm25: 3 } }]),
      ])
      expect(first).toEqual({ status: 'fulfilled', value: { inserted: 1, duplicates: 0 } })
      expect(broken?.status).toBe('rejected')
      expect(third).toEqual({ status: 'fulfilled', value: { inserted: 1, duplicates: 0 } })
      expect(await storage.readings.countReadings()).toBe(2)
    } finally {
      await storage.close()
    }
  })

  it('commits writes still queued when closing, and refuses writes after', async () => {
    const storage = openSqliteStorage({ path: dbPath })
    const ts = Date.UTC(2026, 0, 12)
    const base = { deviceId: 'dev-1', siteId: null, seq: null, receivedAt: ts, expectedPerHour: 60 }
    const writes = [0, 1, 2].map((i) => storage.readings.writeReadings([{ ...base, ts: ts + i, values: { rh: 50 } }]))
    await storage.close()
    expect(await Promise.all(writes)).toHaveLength(3)
    await expect(storage.readings.writeReadings([{ ...base, ts, values: { rh: 1 } }])).rejects.toMatchObject({
      code: 'CLOSED',
    })
    const again = openSqliteStorage({ path: dbPath })
    expect(await again.readings.countReadings()).toBe(3)
    await again.close()
  })

  describe('breach incidents', () => {
    const incident = {
      siteId: 'school-a',
      pollutant: 'no2' as const,
      ruleId: 'eu2008-no2-hour',
      profileId: 'eu2008-50',
      profileVersion: '2026-11-30',
      severity: 'warning' as const,
      threshold: 200,
      start: 0,
      end: null,
      openedAt: 0,
      closedAt: null,
      peak: 210,
      peakAt: 0,
      escalations: [{ level: 300, at: 0, value: 301 }],
      retrospective: false,
      updatedAt: 0,
    }
    const site = { id: 'school-a', name: 'A', kind: 'school' as const, municipality: 'Lund', lat: 55.7, lon: 13.2 }

    it('refuses to read an incident whose escalations were corrupted in the database (CORRUPT_ROW)', async () => {
      const storage = openSqliteStorage({ path: dbPath })
      try {
        await storage.registry.upsertSites([site])
        const saved = await storage.breaches.saveIncident(incident)
        const db = new Database(dbPath)
        for (const bad of ['not json', '[{"level":300,"at":0}]', '{"level":300}']) {
          db.prepare('UPDATE incidents SET escalations = ? WHERE id = ?').run(bad, saved.id)
          await expect(storage.breaches.getIncident(saved.id)).rejects.toMatchObject({ code: 'CORRUPT_ROW' })
        }
        db.prepare('UPDATE incidents SET escalations = ? WHERE id = ?').run('[]', saved.id)
        db.close()
        expect(await storage.breaches.getIncident(saved.id)).toEqual({ ...saved, escalations: [] })
      } finally {
        await storage.close()
      }
    })

    it('counts open incidents per site by scanning the partial index of open incidents', async () => {
      const storage = openSqliteStorage({ path: dbPath })
      await storage.close()
      const db = new Database(dbPath, { readonly: true })
      try {
        const plan = db
          .prepare(
            `EXPLAIN QUERY PLAN SELECT site_id, count(*) AS count FROM incidents
             WHERE end_ts IS NULL AND withdrawn_at IS NULL GROUP BY site_id`,
          )
          .all()
          .map((row) => JSON.stringify(row))
          .join('\n')
        // The partial index holds only open incidents, so the scan never touches closed ones.
        expect(plan).toMatch(/SCAN incidents USING (COVERING )?INDEX incidents_open/)
      } finally {
        db.close()
      }
    })

    it('upgrades a version 3 database with its data and then stores incidents', async () => {
      const db = new Database(dbPath)
      for (const step of MIGRATIONS.slice(0, 3)) db.exec(step)
      db.pragma('user_version = 3')
      db.close()
      const storage = openSqliteStorage({ path: dbPath })
      try {
        await storage.registry.upsertSites([site])
        const saved = await storage.breaches.saveIncident(incident)
        expect(await storage.breaches.getIncident(saved.id)).toEqual(saved)
      } finally {
        await storage.close()
      }
    })
  })

  describe('alerts', () => {
    const NOW = Date.UTC(2026, 0, 12)
    const site = { id: 'school-a', name: 'A', kind: 'school' as const, municipality: 'Lund', lat: 55.7, lon: 13.2 }

    /** `count` live events at school-a, each fanned out to one e-mail subscription; returns the outbox ids. */
    async function seedOutbox(storage: Storage, count: number): Promise<number[]> {
      await storage.registry.upsertSites([site])
      const user = await storage.access.addUser(
        { email: 'a@example.org', name: null, role: 'staff', sites: [], passwordHash: null },
        NOW,
      )
      const sub = await storage.alerts.addSubscription({
        userId: user.id,
        topic: 'breaches',
        channel: 'email',
        target: 'a@example.org',
        sites: 'all',
        minSeverity: 'info',
        language: 'sv',
        quietHours: null,
        unsubscribeHash: 'h',
        createdAt: NOW,
      })
      await storage.alerts.appendEvents(
        Array.from({ length: count }, (_, i) => ({
          key: `k${i}`,
          kind: 'opened' as const,
          topic: 'breaches' as const,
          siteId: 'school-a',
          deviceId: null,
          incidentId: null,
          severity: 'warning' as const,
          urgent: false,
          live: true,
          at: NOW,
          data: { i },
        })),
        NOW,
      )
      for (const event of await storage.alerts.pendingFanOut(count)) {
        await storage.alerts.fanOut(
          event.id,
          [
            {
              subscriptionId: sub.id,
              userId: user.id,
              channel: 'email',
              target: 'a@example.org',
              status: 'pending',
              deliverAfter: NOW,
              subject: 's',
              text: 't',
              html: '<p>t</p>',
              payload: { i: event.id },
              language: 'sv',
            },
          ],
          NOW,
        )
      }
      return (await storage.alerts.listOutbox({ limit: count })).map((row) => row.id)
    }

    it('never gives two processes the same outbox row', async () => {
      const storage = openSqliteStorage({ path: dbPath })
      const ids = await seedOutbox(storage, 600)
      await storage.close()
      expect(ids).toHaveLength(600)
      const fixture = fileURLToPath(new URL('./concurrent-claimer.fixture.ts', import.meta.url))
      const openAt = String(Date.now() + 2000)
      const children = await Promise.all(
        ['1', '1', '2'].map(
          (batch) =>
            new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
              const child = spawn(process.execPath, ['--import', 'tsx', fixture, dbPath, String(NOW), batch, openAt], {
                stdio: ['ignore', 'pipe', 'pipe'],
              })
              let stdout = ''
              let stderr = ''
              child.stdout.on('data', (chunk: Buffer) => {
                stdout += chunk.toString()
              })
              child.stderr.on('data', (chunk: Buffer) => {
                stderr += chunk.toString()
              })
              child.on('error', reject)
              child.on('exit', (code) => resolve({ code, stdout, stderr }))
            }),
        ),
      )
      expect(children.map(({ code, stderr }) => ({ code, stderr }))).toEqual(
        children.map(() => ({ code: 0, stderr: '' })),
      )
      const claimed = children.map(({ stdout }) => z.array(z.number()).parse(JSON.parse(stdout)))
      const all = claimed.flat()
      expect(all).toHaveLength(ids.length)
      expect(new Set(all)).toEqual(new Set(ids))
    })

    it('reads the fan-out queue and the per-user lists through their indexes', async () => {
      const storage = openSqliteStorage({ path: dbPath })
      await storage.close()
      const db = new Database(dbPath, { readonly: true })
      const plan = (sql: string, ...params: unknown[]) =>
        db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .all(...params)
          .map((row) => JSON.stringify(row))
          .join('\n')
      try {
        expect(
          plan('SELECT * FROM alert_events WHERE live = 1 AND fanned_out_at IS NULL ORDER BY id LIMIT ?', 1),
        ).toMatch(/SCAN alert_events USING (COVERING )?INDEX alert_events_pending/)
        expect(
          plan(
            `SELECT count(*) AS count, min(created_at) AS oldest FROM outbox
             WHERE user_id = ? AND created_at >= ? AND status IN ('pending', 'sending', 'sent')`,
            'u',
            0,
          ),
        ).toMatch(/SEARCH outbox USING INDEX outbox_recent \(user_id=\? AND created_at>\?\)/)
        expect(
          plan(
            `SELECT * FROM outbox WHERE user_id = ? AND channel = 'in_app' AND status = 'sent' AND read_at IS NULL
             ORDER BY id DESC LIMIT ?`,
            'u',
            1,
          ),
        ).toMatch(/SEARCH outbox USING INDEX outbox_notifications \(user_id=\?\)/)
        expect(plan('SELECT * FROM outbox WHERE user_id = ? ORDER BY id DESC LIMIT ?', 'u', 1)).toMatch(
          /SEARCH outbox USING INDEX outbox_by_user \(user_id=\?\)/,
        )
        for (const [index, status, column] of [
          ['outbox_pending', 'pending', 'next_attempt_at'],
          ['outbox_leased', 'sending', 'lease_until'],
          ['outbox_deferred', 'deferred', 'deliver_after'],
        ]) {
          // The queues name their index (INDEXED BY, so prepare fails without it); it must also give the order.
          const queue = plan(
            `SELECT * FROM outbox INDEXED BY ${index} WHERE status = '${status}' AND ${column} <= ?
             ORDER BY ${column}, id LIMIT ?`,
            0,
            1,
          )
          expect(queue).toMatch(new RegExp(`SEARCH outbox USING INDEX ${index} \\(${column}<\\?\\)`))
          expect(queue).not.toMatch(/TEMP B-TREE/)
        }
      } finally {
        db.close()
      }
    })

    it('upgrades a version 4 database with its incidents and then stores alerts', async () => {
      const db = new Database(dbPath)
      for (const step of MIGRATIONS.slice(0, 4)) db.exec(step)
      db.pragma('user_version = 4')
      db.close()
      const storage = openSqliteStorage({ path: dbPath })
      try {
        expect(await seedOutbox(storage, 2)).toHaveLength(2)
        expect(await storage.alerts.claimDue(NOW, 10, 1000)).toHaveLength(2)
      } finally {
        await storage.close()
      }
    })

    it('refuses to read rows whose JSON or vocabulary was corrupted in the database (CORRUPT_ROW)', async () => {
      const storage = openSqliteStorage({ path: dbPath })
      const db = new Database(dbPath)
      try {
        const [id] = await seedOutbox(storage, 1)
        const [sub] = await storage.alerts.listSubscriptions()
        const [event] = await storage.alerts.listEvents({ limit: 1 })
        const corruptions: [string, unknown[], () => Promise<unknown>][] = [
          [
            'UPDATE outbox SET payload = ? WHERE id = ?',
            ['{not json', id],
            () => storage.alerts.listOutbox({ limit: 1 }),
          ],
          ['UPDATE outbox SET status = ? WHERE id = ?', ['lost', id], () => storage.alerts.listOutbox({ limit: 1 })],
          [
            'UPDATE alert_events SET data = ? WHERE id = ?',
            ['', event?.id],
            () => storage.alerts.listEvents({ limit: 1 }),
          ],
          [
            'UPDATE subscriptions SET quiet_hours = ? WHERE id = ?',
            ['{"windows":[]}', sub?.id],
            () => storage.alerts.listSubscriptions(),
          ],
        ]
        for (const [sql, params, read] of corruptions) {
          const before = await read()
          const column = /SET (\w+)/.exec(sql)?.[1] ?? ''
          const table = /UPDATE (\w+)/.exec(sql)?.[1] ?? ''
          const original = db.prepare(`SELECT ${column} AS v FROM ${table} WHERE id = ?`).get(params[1])
          db.prepare(sql).run(...params)
          await expect(read(), sql).rejects.toMatchObject({ code: 'CORRUPT_ROW' })
          db.prepare(`UPDATE ${table} SET ${column} = ? WHERE id = ?`).run(
            z.object({ v: z.unknown() }).parse(original).v,
            params[1],
          )
          expect(await read()).toEqual(before)
        }
      } finally {
        db.close()
        await storage.close()
      }
    })
  })

  it('refuses a database written by a newer schema version', async () => {
    const storage = openSqliteStorage({ path: dbPath })
    await storage.close()
    const db = new Database(dbPath)
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`)
    db.close()
    expect(() => openSqliteStorage({ path: dbPath })).toThrow(expect.objectContaining({ code: 'SCHEMA_TOO_NEW' }))
  })
})
