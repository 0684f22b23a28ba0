import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { silentLogger } from '@skolluft/runtime'
import { tempDir } from '@skolluft/testkit'
import { describe, it } from 'vitest'
import { z } from 'zod'
import { describeStorageContract } from '../contract-suite.ts'
import { openInfluxStorage } from './index.ts'

/**
 * The whole storage contract against a real InfluxDB 2 (2.7 or later): run with INFLUX_URL, INFLUX_TOKEN (an
 * all-access or operator token: each test creates its own bucket and deletes it) and INFLUX_ORG set, for example
 * against the compose file's InfluxDB (README, "InfluxDB"). There is no InfluxDB 2 server on the CI machine (Debian
 * ships InfluxDB 1.6, which has no Flux), so CI runs it only where those are set and prints why it did not;
 * the write path is tested against VictoriaMetrics in writer.test.ts either way.
 */
const target = z
  .object({ INFLUX_URL: z.url(), INFLUX_TOKEN: z.string().min(1), INFLUX_ORG: z.string().min(1) })
  .safeParse(process.env)

const SKIP_REASON =
  'INFLUX_URL, INFLUX_TOKEN and INFLUX_ORG are not set (no InfluxDB 2 server on this machine; see README "InfluxDB")'

if (!target.success) {
  console.warn(`SKIPPING the storage contract against InfluxDB 2: ${SKIP_REASON}`)
  describe('storage contract: influxdb', () => {
    it.skip(`runs against a real InfluxDB 2 only: ${SKIP_REASON}`, () => undefined)
  })
}

const OrgList = z.object({ orgs: z.array(z.object({ id: z.string() })) })
const CreatedBucket = z.object({ id: z.string() })

async function api(path: string, init: RequestInit = {}): Promise<unknown> {
  if (!target.success) throw new Error('no InfluxDB configured')
  const response = await fetch(new URL(path, target.data.INFLUX_URL), {
    ...init,
    headers: { authorization: `Token ${target.data.INFLUX_TOKEN}`, 'content-type': 'application/json' },
  })
  if (!response.ok)
    throw new Error(`InfluxDB ${init.method ?? 'GET'} ${path}: ${response.status} ${await response.text()}`)
  return response.status === 204 ? undefined : response.json()
}

if (target.success) {
  const { INFLUX_URL: url, INFLUX_TOKEN: token, INFLUX_ORG: org } = target.data
  describeStorageContract('influxdb', async () => {
    const dir = await tempDir()
    const [first] = OrgList.parse(await api(`/api/v2/orgs?org=${encodeURIComponent(org)}`)).orgs
    if (first === undefined) throw new Error(`no InfluxDB organisation ${org}`)
    const bucket = `skolluft-test-${randomBytes(6).toString('hex')}`
    const { id } = CreatedBucket.parse(
      await api('/api/v2/buckets', {
        method: 'POST',
        body: JSON.stringify({ orgID: first.id, name: bucket, retentionRules: [] }),
      }),
    )
    const open = () =>
      openInfluxStorage({
        sqlite: { path: join(dir.path, 'skolluft.db') },
        influx: { url, token, org, bucket },
        spoolPath: join(dir.path, `influx-spool-${randomBytes(4).toString('hex')}.db`),
        log: silentLogger(),
      })
    return {
      storage: open(),
      reopen: async () => open(),
      cleanup: async () => {
        await api(`/api/v2/buckets/${id}`, { method: 'DELETE' })
        await dir.cleanup()
      },
    }
  })
}
