import { readdirSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from '@skolluft/testkit'
import { spawnCli, waitForExit } from './platform.ts'

/**
 * The vendored Sensor.Community fixtures (test/fixtures/sensor-community: one Aberdeen station, an SDS011 and a
 * BME280, 5–11 November 2018) and what the tests that import them share. Each test reads the archive files with
 * its own plain split, never with the project's parser.
 */

export const SC_FIXTURES = fileURLToPath(
  new URL('../fixtures/sensor-community/aberdeen-bme280-2018-11/', import.meta.url),
)

/** The site the tests import the station to. */
export const SC_SITE = 'test-abdn'
export const SC_SITE_RECORD = {
  id: SC_SITE,
  name: 'Aberdeen Sensor.Community station (demo)',
  kind: 'school',
  municipality: 'Aberdeen',
  lat: 56.963,
  lon: -2.211,
  demo: true,
} as const
/** The same site as `skolluft sites import` reads it. */
export const SC_SITES_CSV = `id,name,kind,municipality,lat,lon,demo
${SC_SITE},"${SC_SITE_RECORD.name}",school,Aberdeen,${SC_SITE_RECORD.lat},${SC_SITE_RECORD.lon},true
`

/** Archive column → metric for the two sensor types of the fixtures (P1 = PM10, P2 = PM2.5). */
export const SC_ARCHIVE_COLUMNS: Readonly<
  Record<string, readonly (readonly [column: string, metric: 'pm10' | 'pm25' | 'temp' | 'rh'])[]>
> = {
  sds011: [
    ['P1', 'pm10'],
    ['P2', 'pm25'],
  ],
  bme280: [
    ['temperature', 'temp'],
    ['humidity', 'rh'],
  ],
}

export interface CliRun {
  readonly code: number | null
  readonly stdout: string
  /** stdout and stderr together, for failure messages. */
  readonly output: string
}

/** Runs `skolluft <args>` (the real CLI, a child process) to its end. */
export async function runCli(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  const child = spawnCli(args, env)
  let stdout = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  const code = await waitForExit(child)
  return { code, stdout, output: child.output() }
}

/** The fixture file names, sorted (SDS011 and BME280 day files). */
export function scFixtureNames(): string[] {
  return readdirSync(SC_FIXTURES)
    .filter((f) => f.endsWith('.csv'))
    .sort()
}

/** A fresh DATA_DIR with the Aberdeen site imported through `skolluft sites import` (the real CLI). */
export async function dataDirWithScSite(): Promise<{
  dir: Awaited<ReturnType<typeof tempDir>>
  env: Record<string, string>
}> {
  const dir = await tempDir()
  const env = { DATA_DIR: dir.path }
  const sites = join(dir.path, 'sites.csv')
  await writeFile(sites, SC_SITES_CSV)
  const imported = await runCli(['sites', 'import', sites], env)
  if (imported.code !== 0) {
    await dir.cleanup()
    throw new Error(`sites import exited ${imported.code}: ${imported.output}`)
  }
  return { dir, env }
}
