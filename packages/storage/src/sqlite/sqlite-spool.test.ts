import { join } from 'node:path'
import { tempDir } from '@skolluft/testkit'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { SpoolRecord, TelemetrySpool } from '../spool.ts'
import { openSqliteSpool } from './sqlite-spool.ts'

const record = (n: number, receivedAt = 1_000 + n): SpoolRecord => ({
  topic: `aq/v1/devices/dev-${n % 3}/telemetry`,
  payload: Buffer.from(JSON.stringify({ ts: new Date(receivedAt).toISOString(), pm25: n })),
  receivedAt,
})

describe('SQLite telemetry spool', () => {
  let dir: { path: string; cleanup: () => Promise<void> }
  let path: string
  let spool: TelemetrySpool

  beforeEach(async () => {
    dir = await tempDir()
    path = join(dir.path, 'gateway-spool.db')
    spool = openSqliteSpool({ path })
  })
  afterEach(async () => {
    await spool.close()
    await dir.cleanup()
  })

  /** What another connection (a restarted process) sees on disk. */
  function committedIds(): number[] {
    const db = new Database(path, { readonly: true })
    try {
      return db
        .prepare<[], { id: number }>('SELECT id FROM spool ORDER BY id')
        .all()
        .map((r) => r.id)
    } finally {
      db.close()
    }
  }

  it('appends in WAL mode, resolves with increasing ids once committed, and keeps payloads byte for byte', async () => {
    const ids = await spool.append([record(1), record(2)])
    expect(ids).toHaveLength(2)
    expect(ids[1]).toBeGreaterThan(ids[0] ?? Number.POSITIVE_INFINITY)
    expect(committedIds()).toEqual(ids)
    const entries = await spool.pending({ limit: 10 })
    expect(entries.map((e) => e.id)).toEqual(ids)
    expect(entries[1]?.payload.equals(record(2).payload)).toBe(true)
    expect(entries[1]?.topic).toBe(record(2).topic)
    expect(entries[1]?.receivedAt).toBe(record(2).receivedAt)
    const db = new Database(path, { readonly: true })
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    db.close()
  })

  it('group-commits appends made in one turn; each resolves only after its commit', async () => {
    const appends = Array.from({ length: 200 }, (_, n) => spool.append([record(n)]))
    expect(committedIds()).toHaveLength(0) // nothing is durable yet, so nothing has resolved
    await new Promise((resolve) => setImmediate(resolve))
    expect(committedIds()).toHaveLength(200) // one commit, at the end of the turn
    const ids = (await Promise.all(appends)).flat()
    expect(ids).toHaveLength(200)
    expect(new Set(ids).size).toBe(200)
    expect(committedIds()).toEqual([...ids].sort((a, b) => a - b))
    expect(spool.size()).toBe(200)
  })

  it('acks delete entries, pending pages by id, and ids are never reused after the newest is deleted', async () => {
    const ids = await spool.append(Array.from({ length: 14 }, (_, n) => record(n)))
    // Out of order, runs and single ids, an unknown id: exactly the acknowledged ones go.
    const acked = [ids[12], ids[0], ids[11], ids[9], 999_999, ids[13], ids[10]].map((id) => id ?? 0)
    await spool.ack(acked)
    expect(spool.size()).toBe(8)
    expect((await spool.pending({ limit: 20 })).map((e) => e.id)).toEqual(ids.slice(1, 9))
    const first = await spool.pending({ limit: 5 })
    expect(first.map((e) => e.id)).toEqual(ids.slice(1, 6))
    const rest = await spool.pending({ afterId: first.at(-1)?.id ?? 0, limit: 5 })
    expect(rest.map((e) => e.id)).toEqual(ids.slice(6, 9))
    const [next] = await spool.append([record(11)])
    expect(next).toBeGreaterThan(ids[9] ?? Number.POSITIVE_INFINITY)
  })

  it('prunes entries received before a time and keeps the count across a reopen', async () => {
    await spool.append([record(1, 100), record(2, 200), record(3, 300)])
    expect(await spool.pruneOlderThan(250)).toBe(2)
    expect(spool.size()).toBe(1)
    await spool.close()
    spool = openSqliteSpool({ path })
    expect(spool.size()).toBe(1)
    expect((await spool.pending({ limit: 10 })).map((e) => e.receivedAt)).toEqual([300])
    expect(await spool.pruneOlderThan(301)).toBe(1)
    expect(spool.size()).toBe(0)
  })

  it('commits appends still queued when it closes, then refuses calls', async () => {
    const first = spool.append([record(1)])
    const queued = spool.append([record(2)])
    await spool.close()
    expect(await first).toHaveLength(1)
    expect(await queued).toHaveLength(1)
    expect(committedIds()).toHaveLength(2)
    await expect(spool.append([record(3)])).rejects.toMatchObject({ code: 'CLOSED' })
  })
})
