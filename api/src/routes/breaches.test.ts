import { join } from 'node:path'
import { DAY_MS, HOUR_MS, type Role } from '@skolluft/core'
import { silentLogger } from '@skolluft/runtime'
import { type IncidentInput, MAX_COMMENT_CHARS, openSqliteStorage, type Storage } from '@skolluft/storage'
import { tempDir } from '@skolluft/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type RunningApi, startApi } from '../server.ts'
import { ANONYMOUS_CALLER, addTestUsers, type Caller, call, createToken, logInTestUsers } from '../test-http.ts'

/**
 * Breach incidents over real HTTP against a real SQLite file, seeded through BreachStore.saveIncident: the list
 * and its filters, who sees which incident (public map off and on), and staff acknowledging and commenting
 * (permission, CSRF, audit, validation). The role × endpoint table in full: permissions.test.ts.
 */
const NOW = Date.parse('2026-11-30T12:00:00Z')
const clock = () => NOW

const A = 'site-a'
const B = 'site-b'
const C = 'site-c'

const USERS: readonly { who: string; role: Role; sites: string[] }[] = [
  { who: 'admin', role: 'admin', sites: [] },
  { who: 'staff', role: 'staff', sites: [] },
  { who: 'principal', role: 'principal', sites: [A] },
  { who: 'caretaker', role: 'caretaker', sites: [] },
  { who: 'researcher', role: 'researcher', sites: [] },
]

const BASE = {
  pollutant: 'pm25',
  ruleId: 'who2021-pm25-day',
  profileId: 'who2021',
  profileVersion: '2026-11-30',
  severity: 'info',
  threshold: 15,
  escalations: [],
  retrospective: false,
  updatedAt: NOW - HOUR_MS,
} as const

/** Open at A since two days. */
const A_OPEN: IncidentInput = {
  ...BASE,
  id: 'inc_a-open',
  siteId: A,
  start: NOW - 2 * DAY_MS,
  end: null,
  openedAt: NOW - 2 * DAY_MS,
  closedAt: null,
  peak: 31.5,
  peakAt: NOW - DAY_MS,
}
/** Closed at A, ten to eight days ago; escalated once; opened by late data. */
const A_CLOSED: IncidentInput = {
  ...BASE,
  id: 'inc_a-closed',
  siteId: A,
  pollutant: 'pm10',
  ruleId: 'eu2008-pm10-day',
  profileId: 'eu2008',
  severity: 'warning',
  threshold: 50,
  start: NOW - 10 * DAY_MS,
  end: NOW - 8 * DAY_MS,
  openedAt: NOW - 10 * DAY_MS,
  closedAt: NOW - 7 * DAY_MS,
  peak: 80,
  peakAt: NOW - 9 * DAY_MS,
  escalations: [{ level: 75, at: NOW - 9 * DAY_MS, value: 80 }],
  retrospective: true,
}
/** Open at B since yesterday. */
const B_OPEN: IncidentInput = {
  ...BASE,
  id: 'inc_b-open',
  siteId: B,
  start: NOW - DAY_MS,
  end: null,
  openedAt: NOW - DAY_MS,
  closedAt: null,
  peak: 22,
  peakAt: NOW - DAY_MS,
}
/** At C, withdrawn (late data showed it did not happen). */
const C_WITHDRAWN: IncidentInput = { ...B_OPEN, id: 'inc_c-withdrawn', siteId: C }

const ANONYMOUS = ANONYMOUS_CALLER
const Problem = z.object({
  status: z.number(),
  code: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
})
const Incident = z.object({
  id: z.string(),
  site: z.string(),
  acknowledged: z.object({ at: z.string(), by: z.string().nullable() }).nullable(),
})
const List = z.object({ incidents: z.array(Incident) })
const Comment = z.object({ at: z.string(), actor: z.string(), text: z.string() })
const Detail = Incident.extend({ comments: z.array(Comment).optional() })

let dir: Awaited<ReturnType<typeof tempDir>>
let storage: Storage
let publicOff: RunningApi
let publicOn: RunningApi
const callers = new Map<string, Caller>()
const userIds = new Map<string, string>()

function callerOf(who: string): Caller {
  const caller = callers.get(who)
  if (caller === undefined) throw new Error(`no caller ${who}`)
  return caller
}

async function listIds(server: RunningApi, who: string, query = ''): Promise<string[]> {
  const res = await call(server, callerOf(who), 'GET', `/breaches${query}`)
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  return List.parse(res.body).incidents.map((i) => i.id)
}

function problemOf(res: { status: number; body: unknown }) {
  return Problem.parse(res.body)
}

beforeAll(async () => {
  dir = await tempDir('skolluft-breaches-')
  storage = openSqliteStorage({ path: join(dir.path, 'skolluft.db') })
  await storage.registry.upsertSites(
    [A, B, C].map((id, i) => ({
      id,
      name: `Skola ${id}`,
      kind: 'school',
      municipality: 'Lund',
      lat: 55.7 + i / 100,
      lon: 13.2,
    })),
  )
  for (const incident of [A_CLOSED, A_OPEN, B_OPEN, C_WITHDRAWN]) await storage.breaches.saveIncident(incident)
  await storage.breaches.withdrawIncident('inc_c-withdrawn', NOW - HOUR_MS)
  for (const [who, id] of await addTestUsers(storage, USERS, NOW - DAY_MS)) userIds.set(who, id)
  const base = { log: silentLogger(), storage, clock, host: '127.0.0.1', port: 0 }
  publicOff = await startApi({ ...base, options: { publicMap: false } })
  publicOn = await startApi({ ...base, options: { publicMap: true } })

  callers.set('anonymous', ANONYMOUS)
  for (const [who, caller] of await logInTestUsers(publicOff, USERS)) callers.set(who, caller)
  const tokens = [
    ['staffToken', { name: 'staff, default scopes', role: 'staff' }],
    ['managerToken', { name: 'breach desk', role: 'staff', scopes: ['map:read', 'breaches:manage'] }],
  ] as const
  for (const [who, body] of tokens) {
    const { caller, id } = await createToken(publicOff, callerOf('admin'), body)
    callers.set(who, caller)
    userIds.set(who, id)
  }
})

afterAll(async () => {
  await publicOff?.close()
  await publicOn?.close()
  await storage?.close()
  await dir?.cleanup()
})

describe('GET /breaches', () => {
  it('lists the incidents newest start first, in snake_case with ISO times, without withdrawn ones', async () => {
    const res = await call(publicOff, callerOf('admin'), 'GET', '/breaches')
    expect(res.status).toBe(200)
    const body = z.object({ incidents: z.array(z.record(z.string(), z.unknown())) }).parse(res.body)
    expect(body.incidents.map((i) => i.id)).toEqual(['inc_b-open', 'inc_a-open', 'inc_a-closed'])
    expect(body.incidents[2]).toEqual({
      id: 'inc_a-closed',
      site: A,
      pollutant: 'pm10',
      rule: 'eu2008-pm10-day',
      profile: { id: 'eu2008', version: '2026-11-30' },
      severity: 'warning',
      threshold: 50,
      start: '2026-11-20T12:00:00.000Z',
      end: '2026-11-22T12:00:00.000Z',
      opened_at: '2026-11-20T12:00:00.000Z',
      closed_at: '2026-11-23T12:00:00.000Z',
      peak: 80,
      peak_at: '2026-11-21T12:00:00.000Z',
      escalations: [{ level: 75, at: '2026-11-21T12:00:00.000Z', value: 80 }],
      retrospective: true,
      acknowledged: null,
      withdrawn_at: null,
    })
    expect(body.incidents[0]).toMatchObject({ end: null, closed_at: null, retrospective: false, escalations: [] })
  })

  it.each([
    ['?state=open', ['inc_b-open', 'inc_a-open']],
    ['?state=closed', ['inc_a-closed']],
    ['?state=all', ['inc_b-open', 'inc_a-open', 'inc_a-closed']],
    [`?site=${A}`, ['inc_a-open', 'inc_a-closed']],
    [`?site=${A}&state=open`, ['inc_a-open']],
    [`?site=${C}`, []],
    // Overlapping [from, to): the closed one ran from the 20th to the 22nd.
    ['?from=2026-11-21T00:00:00Z&to=2026-11-23T00:00:00Z', ['inc_a-closed']],
    ['?from=2026-11-22T12:00:00Z', ['inc_b-open', 'inc_a-open']],
    ['?to=2026-11-29T12:00:00%2B01:00', ['inc_a-open', 'inc_a-closed']],
    ['?limit=1', ['inc_b-open']],
    ['?limit=2&state=all', ['inc_b-open', 'inc_a-open']],
  ])('filters %s', async (query, expected) => {
    expect(await listIds(publicOff, 'staff', query)).toEqual(expected)
  })

  it('shows a principal only their own sites while the map is not public, every site when it is', async () => {
    expect(await listIds(publicOff, 'principal')).toEqual(['inc_a-open', 'inc_a-closed'])
    expect(await listIds(publicOff, 'principal', '?state=open&limit=1')).toEqual(['inc_a-open'])
    const other = await call(publicOff, callerOf('principal'), 'GET', `/breaches?site=${B}`)
    expect([other.status, problemOf(other).code]).toEqual([403, 'forbidden'])
    expect(await listIds(publicOn, 'principal')).toEqual(['inc_b-open', 'inc_a-open', 'inc_a-closed'])
    expect(await listIds(publicOn, 'principal', `?site=${B}`)).toEqual(['inc_b-open'])
  })

  it('needs a log-in unless the map is public', async () => {
    const res = await call(publicOff, ANONYMOUS, 'GET', '/breaches')
    expect([res.status, problemOf(res).code]).toEqual([401, 'unauthorized'])
    expect(await listIds(publicOn, 'anonymous')).toEqual(['inc_b-open', 'inc_a-open', 'inc_a-closed'])
  })

  it('answers an unknown site with 404', async () => {
    const res = await call(publicOff, callerOf('staff'), 'GET', '/breaches?site=no-such-site')
    expect([res.status, problemOf(res).code]).toEqual([404, 'site_not_found'])
  })

  it.each([
    ['?state=pending', 'state'],
    ['?state=', 'state'],
    ['?limit=0', 'limit'],
    ['?limit=1001', 'limit'],
    ['?limit=ten', 'limit'],
    ['?from=yesterday', 'from'],
    ['?to=2026-11-30', 'to'],
    ['?site=Site%20A', 'site'],
    ['?from=2026-11-30T00:00:00Z&to=2026-11-29T00:00:00Z', 'from'],
    ['?colour=red', ''],
  ])('refuses %s with a 400 naming %j', async (query, path) => {
    const res = await call(publicOff, callerOf('staff'), 'GET', `/breaches${query}`)
    expect(res.status).toBe(400)
    const problem = problemOf(res)
    expect(problem.code).toBe('invalid_request')
    expect(problem.errors?.map((e) => e.path)).toEqual([path])
  })

  it('accepts the largest limit', async () => {
    expect(await listIds(publicOff, 'staff', '?limit=1000')).toHaveLength(3)
  })
})

describe('GET /breaches/:id', () => {
  it('returns the incident with its comments; a withdrawn one says so', async () => {
    const res = await call(publicOff, callerOf('caretaker'), 'GET', '/breaches/inc_a-open')
    expect(res.status).toBe(200)
    expect(Detail.parse(res.body)).toMatchObject({ id: 'inc_a-open', site: A, comments: expect.any(Array) })
    const withdrawn = await call(publicOff, callerOf('staff'), 'GET', '/breaches/inc_c-withdrawn')
    expect(withdrawn.status).toBe(200)
    expect(withdrawn.body).toMatchObject({ id: 'inc_c-withdrawn', withdrawn_at: '2026-11-30T11:00:00.000Z' })
  })

  it('answers an incident the caller may not see exactly like an unknown one', async () => {
    const hidden = await call(publicOff, callerOf('principal'), 'GET', '/breaches/inc_b-open')
    const unknown = await call(publicOff, callerOf('principal'), 'GET', '/breaches/inc_nothing')
    const malformed = await call(publicOff, callerOf('principal'), 'GET', '/breaches/not-an-incident')
    for (const res of [hidden, unknown, malformed]) {
      expect([res.status, problemOf(res).code]).toEqual([404, 'breach_not_found'])
    }
    expect(Object.keys(z.record(z.string(), z.unknown()).parse(hidden.body)).sort()).toEqual(
      Object.keys(z.record(z.string(), z.unknown()).parse(unknown.body)).sort(),
    )
    const own = await call(publicOff, callerOf('principal'), 'GET', '/breaches/inc_a-open')
    expect(own.status).toBe(200)
    expect((await call(publicOn, callerOf('principal'), 'GET', '/breaches/inc_b-open')).status).toBe(200)
  })

  it('needs a log-in unless the map is public, and hides comments and names from anonymous visitors', async () => {
    const off = await call(publicOff, ANONYMOUS, 'GET', '/breaches/inc_a-open')
    expect(off.status).toBe(401)
    const on = await call(publicOn, ANONYMOUS, 'GET', '/breaches/inc_a-open')
    expect(on.status).toBe(200)
    expect(on.body).not.toHaveProperty('comments')
  })
})

describe('acknowledging', () => {
  it('records who acknowledged, keeps the first acknowledgement, and audits both calls', async () => {
    const first = await call(publicOff, callerOf('staff'), 'POST', '/breaches/inc_a-open/acknowledge')
    expect(first.status).toBe(200)
    const staffActor = `user:${userIds.get('staff')}`
    expect(Incident.parse(first.body)).toMatchObject({
      id: 'inc_a-open',
      acknowledged: { at: '2026-11-30T12:00:00.000Z', by: staffActor },
    })
    const again = await call(publicOff, callerOf('admin'), 'POST', '/breaches/inc_a-open/acknowledge')
    expect(again.status).toBe(200)
    expect(Incident.parse(again.body).acknowledged).toEqual({ at: '2026-11-30T12:00:00.000Z', by: staffActor })
    expect(await storage.breaches.getIncident('inc_a-open')).toMatchObject({
      acknowledgedAt: NOW,
      acknowledgedBy: staffActor,
    })

    const entries = (await storage.access.listAudit({ limit: 100 })).filter((e) => e.action === 'breach.acknowledge')
    expect(entries.map((e) => ({ actor: e.actor, target: e.target, detail: e.detail }))).toEqual([
      { actor: `user:${userIds.get('admin')}`, target: 'inc_a-open', detail: { site: A, first: false } },
      { actor: staffActor, target: 'inc_a-open', detail: { site: A, first: true } },
    ])

    // Everyone who may see it sees that it was acknowledged; anonymous visitors not by whom.
    const principal = Detail.parse((await call(publicOff, callerOf('principal'), 'GET', '/breaches/inc_a-open')).body)
    expect(principal.acknowledged).toEqual({ at: '2026-11-30T12:00:00.000Z', by: staffActor })
    const anonymous = Detail.parse((await call(publicOn, ANONYMOUS, 'GET', '/breaches/inc_a-open')).body)
    expect(anonymous.acknowledged).toEqual({ at: '2026-11-30T12:00:00.000Z', by: null })
  })

  it('works with an API token that has the breaches:manage scope, without CSRF', async () => {
    const res = await call(publicOff, callerOf('managerToken'), 'POST', '/breaches/inc_a-closed/acknowledge')
    expect(res.status).toBe(200)
    expect(Incident.parse(res.body).acknowledged?.by).toBe(`token:${userIds.get('managerToken')}`)
  })

  it.each([
    ['anonymous', 401, 'unauthorized'],
    ['principal', 403, 'forbidden'],
    ['caretaker', 403, 'forbidden'],
    ['researcher', 403, 'forbidden'],
    // A staff token gets breaches:manage only when asked for by name.
    ['staffToken', 403, 'forbidden'],
  ])('refuses %s with %i', async (who, status, code) => {
    for (const server of [publicOff, publicOn]) {
      const res = await call(server, callerOf(who), 'POST', '/breaches/inc_b-open/acknowledge')
      expect([res.status, problemOf(res).code]).toEqual([status, code])
      // Refused before the id is looked at: an unknown id gets the same answer.
      const unknown = await call(server, callerOf(who), 'POST', '/breaches/inc_nothing/acknowledge')
      expect([unknown.status, problemOf(unknown).code]).toEqual([status, code])
    }
    expect((await storage.breaches.getIncident('inc_b-open'))?.acknowledgedAt).toBeNull()
  })

  it('needs the CSRF header with a session cookie', async () => {
    const res = await call(publicOff, callerOf('staff'), 'POST', '/breaches/inc_b-open/acknowledge', { csrf: false })
    expect([res.status, problemOf(res).code]).toEqual([403, 'csrf_failed'])
    expect((await storage.breaches.getIncident('inc_b-open'))?.acknowledgedAt).toBeNull()
  })

  it('answers an unknown incident with 404 and GET with 405', async () => {
    const res = await call(publicOff, callerOf('staff'), 'POST', '/breaches/inc_nothing/acknowledge')
    expect([res.status, problemOf(res).code]).toEqual([404, 'breach_not_found'])
    const get = await call(publicOff, callerOf('staff'), 'GET', '/breaches/inc_b-open/acknowledge')
    expect([get.status, problemOf(get).code]).toEqual([405, 'method_not_allowed'])
  })
})

describe('commenting', () => {
  it('adds comments in order, shows them to callers who may see the incident, and audits without the text', async () => {
    const text = 'Ringde rektorn; fönstren mot Getingevägen hålls stängda i dag.'
    const first = await call(publicOff, callerOf('staff'), 'POST', '/breaches/inc_b-open/comments', { body: { text } })
    expect(first.status).toBe(201)
    const staffActor = `user:${userIds.get('staff')}`
    expect(first.body).toEqual({ at: '2026-11-30T12:00:00.000Z', actor: staffActor, text })
    const second = await call(publicOff, callerOf('managerToken'), 'POST', '/breaches/inc_b-open/comments', {
      body: { text: 'Sensor checked.' },
    })
    expect(second.status).toBe(201)

    const detail = Detail.parse((await call(publicOff, callerOf('caretaker'), 'GET', '/breaches/inc_b-open')).body)
    expect(detail.comments).toEqual([
      { at: '2026-11-30T12:00:00.000Z', actor: staffActor, text },
      { at: '2026-11-30T12:00:00.000Z', actor: `token:${userIds.get('managerToken')}`, text: 'Sensor checked.' },
    ])
    const anonymous = await call(publicOn, ANONYMOUS, 'GET', '/breaches/inc_b-open')
    expect(anonymous.status).toBe(200)
    expect(anonymous.body).not.toHaveProperty('comments')
    expect(JSON.stringify(anonymous.body)).not.toContain('Ringde')

    const entries = (await storage.access.listAudit({ limit: 100 })).filter((e) => e.action === 'breach.comment')
    expect(entries.map((e) => ({ actor: e.actor, target: e.target, detail: e.detail }))).toEqual([
      {
        actor: `token:${userIds.get('managerToken')}`,
        target: 'inc_b-open',
        detail: { site: B, chars: 'Sensor checked.'.length },
      },
      { actor: staffActor, target: 'inc_b-open', detail: { site: B, chars: [...text].length } },
    ])
    expect(JSON.stringify(entries)).not.toContain('Ringde')
    expect(JSON.stringify(entries)).not.toContain('Sensor checked')
  })

  it(`accepts ${MAX_COMMENT_CHARS} characters (counted as code points)`, async () => {
    const text = `${'ö'.repeat(MAX_COMMENT_CHARS - 1)}🌫`
    const res = await call(publicOff, callerOf('admin'), 'POST', '/breaches/inc_a-closed/comments', { body: { text } })
    expect(res.status).toBe(201)
    expect(Comment.parse(res.body).text).toBe(text)
  })

  it.each([
    ['an empty text', { text: '' }, 'text'],
    ['a blank text', { text: ' \n\t ' }, 'text'],
    ['a text over the limit', { text: 'x'.repeat(MAX_COMMENT_CHARS + 1) }, 'text'],
    ['a text that is not a string', { text: 42 }, 'text'],
    ['no text', {}, 'text'],
    ['an unknown key', { text: 'ok', author: 'someone else' }, ''],
  ])('refuses %s with 400', async (_what, body, path) => {
    const res = await call(publicOff, callerOf('staff'), 'POST', '/breaches/inc_a-open/comments', { body })
    expect(res.status).toBe(400)
    const problem = problemOf(res)
    expect(problem.code).toBe('invalid_request')
    expect(problem.errors?.map((e) => e.path)).toEqual([path])
  })

  it('refuses a request without a body with 400', async () => {
    const res = await call(publicOff, callerOf('staff'), 'POST', '/breaches/inc_a-open/comments')
    expect([res.status, problemOf(res).code]).toEqual([400, 'invalid_request'])
  })

  it.each([
    ['anonymous', 401],
    ['principal', 403],
    ['caretaker', 403],
    ['researcher', 403],
    ['staffToken', 403],
  ])('refuses %s with %i and stores nothing', async (who, status) => {
    const res = await call(publicOff, callerOf(who), 'POST', '/breaches/inc_a-open/comments', {
      body: { text: `from ${who}` },
    })
    expect(res.status).toBe(status)
    const comments = await storage.breaches.listComments('inc_a-open')
    expect(comments.map((c) => c.text)).not.toContain(`from ${who}`)
  })

  it('needs the CSRF header with a session cookie', async () => {
    const res = await call(publicOff, callerOf('admin'), 'POST', '/breaches/inc_a-open/comments', {
      body: { text: 'no csrf' },
      csrf: false,
    })
    expect([res.status, problemOf(res).code]).toEqual([403, 'csrf_failed'])
    expect((await storage.breaches.listComments('inc_a-open')).map((c) => c.text)).not.toContain('no csrf')
  })

  it('answers an unknown incident with 404', async () => {
    const res = await call(publicOff, callerOf('staff'), 'POST', '/breaches/inc_nothing/comments', {
      body: { text: 'hello' },
    })
    expect([res.status, problemOf(res).code]).toEqual([404, 'breach_not_found'])
  })
})
