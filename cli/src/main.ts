import { parseArgs } from 'node:util'
import { ConfigError } from '@skolluft/runtime'

// Command modules are imported when their command runs, so `skolluft device list` does not load
// the broker, the HTTP server and the simulator.
const services = () => import('./commands/services.ts')
const admin = () => import('./commands/admin.ts')
const people = () => import('./commands/people.ts')
const importer = () => import('./commands/import.ts')
const exporter = () => import('./commands/export.ts')
const calibration = () => import('./commands/calibration.ts')
const influx = () => import('./commands/influx.ts')

export const USAGE = `usage: skolluft <command> [options]

Services (configuration from environment variables, see README):
  start                         gateway, ingest, alerts, API and (unless SIM=off) the simulated fleet, in one process
  gateway                       the MQTT gateway alone
  ingest [--leave]              the ingest service alone (connects to MQTT_URL); --leave retires the worker of
                                INGEST_SHARED_GROUP named by INGEST_CLIENT_ID for good (stop it first): unsubscribes,
                                stores what its session still holds, ends the session, prints the count, exits
  api                           the HTTP API alone
  alerts                        the alerts service alone: breach evaluation and delivery (connects to MQTT_URL)
  sim [--devices <file>] [--backfill <days>]
                                the simulated fleet alone (connects to MQTT_URL)

Administration (work on DATA_DIR):
  device add --site <siteId> [--id <id>] [--model <m>] [--interval <s>] [--indoor] [--height <m>] [--json]
  device list [--json]
  device revoke <deviceId>
  device config <deviceId> --interval <s>   send the device its configuration (needs a running gateway, MQTT_URL)
  sites import <file.csv|file.geojson> [--allow-partial]
  rejects [--limit <n>] [--device <id>] [--json]
  import sensor-community <file.csv>... --site <siteId> [--device-prefix <p>] [--merge-station] [--json]
                                Sensor.Community archive CSV files: one device <p>-<sensor id> per sensor
                                (default prefix sc) at the site; a file imported twice stores nothing twice;
                                --merge-station: one device <p>-loc-<location> per station, each PM reading
                                joined with the climate reading (T, RH) of its cycle (give a station's files together)

People and access (work on DATA_DIR; every change is audited with the actor "cli"):
  user add --role <admin|staff|principal|caretaker|researcher> --email <e> [--site <siteId>]... [--name <n>]
           [--password-stdin] [--json]
                                a principal needs at least one --site, other roles none; without
                                --password-stdin a password is generated and printed once
  user list [--json]
  user disable <email>          the account can no longer log in; its sessions end
  token create --role <role> [--name <n>] [--scope <permission>]... [--site <siteId>]... [--expires-days <n>] [--json]
                                an API token (default scopes: the role's read and export permissions,
                                90 days), printed once; --role service: for an ingest on another machine
                                (REGISTRY_TOKEN: reads the registry, records rejects; nothing else)
  token list [--json]
  token revoke <tokenId>

Calibrations (work on DATA_DIR; see docs/corrections.md; every change is audited with the actor "cli"):
  calibration add --device <id> --metric <m> --slope <n> --intercept <n> --valid-from <ISO> [--note <text>] [--json]
                                a line entered by hand: corrected = slope · x + intercept (x after the device's
                                humidity correction, when its metric has one); the next version of (device, metric);
                                a negative number goes with =, e.g. --intercept=-3
  calibration fit --device <id> --metric <m> --reference <deviceId> --from <ISO> --to <ISO> [--valid-from <ISO>] [--json]
                                least squares of the reference's valid hourly means on the device's over the whole
                                hours [from, to); at least 24 paired hours; valid from --from unless given
  calibration list [--device <id>] [--metric <m>] [--json]
  calibration retire <calId> [--at <ISO>]
                                readings from --at (default now) on no longer get the calibration

Data export (works on DATA_DIR; schemas skolluft-export/1 and /2, see docs/export.md):
  export --resolution <raw|hourly|daily> --from <ISO> --to <ISO> --out <file> [--format <csv|ndjson|parquet>]
         [--schema <1|2>] [--values <raw|corrected>] [--sites <a,b>] [--devices <d1,d2>]
         [--bbox <minLon,minLat,maxLon,maxLat>] [--metrics <pm25,no2>] [--resume]
                                writes <file> and <file>.manifest.json (query, schema, software version,
                                rows, sha256, corrections, licence: EXPORT_LICENCE, attribution:
                                EXPORT_ATTRIBUTION); an interrupted run leaves <file>.partial, which
                                --resume continues (CSV, NDJSON)

InfluxDB 2 (STORE=influxdb; INFLUX_URL, INFLUX_ORG, INFLUX_BUCKET, INFLUX_TOKEN: an operator token):
  influx setup [--retention <days>] [--apply] [--ingest-env <file>] [--read-env <file>]
               [--init --username <name> --password-file <file>]
                                creates what is missing: the organisation, the bucket (retention in days; default 0:
                                kept forever, readings are research data), a token for the ingest (write + read on
                                the bucket) and a read-only one (API, Grafana), each shown once or written to its
                                env file (mode 0600); a second run changes nothing; a different retention or token
                                permissions are reported and changed only with --apply; --init onboards a fresh
                                server (the password from the file; INFLUX_TOKEN becomes the operator token)
  influx check [--retention <days>]
                                compares without changing anything; exit 1 when something is missing or differs
`

const STRING_FLAG = { type: 'string' } as const
/** `skolluft export`'s flags: the API's query parameters (except `after`: --resume finds it). */
const EXPORT_FLAGS = {
  resolution: STRING_FLAG,
  format: STRING_FLAG,
  from: STRING_FLAG,
  to: STRING_FLAG,
  schema: STRING_FLAG,
  values: STRING_FLAG,
  sites: STRING_FLAG,
  devices: STRING_FLAG,
  bbox: STRING_FLAG,
  metrics: STRING_FLAG,
  out: STRING_FLAG,
} as const

export class UsageError extends Error {
  readonly code = 'USAGE'
}

export interface CliIo {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
}

const defaultIo: CliIo = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
}

/** Parses the command line, runs one command and returns the process exit code. */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv, io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'start':
        return await (await services()).runStart(env, io)
      case 'gateway':
        return await (await services()).runGateway(env, io)
      case 'ingest': {
        const { values } = parseArgs({ args: [...rest], options: { leave: { type: 'boolean', default: false } } })
        return await (await services()).runIngest(env, io, { leave: values.leave })
      }
      case 'api':
        return await (await services()).runApi(env, io)
      case 'alerts':
        return await (await services()).runAlerts(env, io)
      case 'sim': {
        const { values } = parseArgs({
          args: [...rest],
          options: { devices: { type: 'string' }, backfill: { type: 'string', default: '0' } },
          strict: true,
        })
        const backfillDays = Number(values.backfill)
        if (!Number.isInteger(backfillDays) || backfillDays < 0 || backfillDays > 60) {
          throw new UsageError('--backfill must be whole days, 0–60')
        }
        return await (await services()).runSim(env, io, values.devices, backfillDays)
      }
      case 'device':
        return await runDevice(rest, env, io)
      case 'user':
        return await runUser(rest, env, io)
      case 'token':
        return await runToken(rest, env, io)
      case 'sites': {
        const [sub, ...args] = rest
        if (sub !== 'import') throw new UsageError('sites: the only subcommand is "import <file>"')
        const { values, positionals } = parseArgs({
          args,
          options: { 'allow-partial': { type: 'boolean', default: false } },
          allowPositionals: true,
          strict: true,
        })
        const file = positionals[0]
        if (!file || positionals.length !== 1) throw new UsageError('sites import: give exactly one file')
        return await (await admin()).sitesImport(env, io, file, values['allow-partial'])
      }
      case 'import': {
        const [format, ...args] = rest
        if (format !== 'sensor-community') throw new UsageError('import: the only format is "sensor-community"')
        const { values, positionals } = parseArgs({
          args,
          options: {
            site: { type: 'string' },
            'device-prefix': { type: 'string', default: 'sc' },
            'merge-station': { type: 'boolean', default: false },
            json: { type: 'boolean', default: false },
          },
          allowPositionals: true,
          strict: true,
        })
        if (!values.site) throw new UsageError('import sensor-community: --site <siteId> is required')
        if (positionals.length === 0) throw new UsageError('import sensor-community: give at least one file')
        return await (await importer()).importSensorCommunity(env, io, {
          files: positionals,
          siteId: values.site,
          devicePrefix: values['device-prefix'],
          json: values.json,
          mergeStation: values['merge-station'],
        })
      }
      case 'rejects': {
        const { values } = parseArgs({
          args: [...rest],
          options: { limit: { type: 'string', default: '50' }, device: { type: 'string' }, json: { type: 'boolean' } },
          strict: true,
        })
        const limit = Number(values.limit)
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError('--limit must be 1–10000')
        return await (await admin()).rejectsList(env, io, {
          limit,
          deviceId: values.device,
          json: values.json ?? false,
        })
      }
      case 'export': {
        const { values, positionals } = parseArgs({
          args: [...rest],
          options: {
            ...EXPORT_FLAGS,
            resume: { type: 'boolean' },
          },
          allowPositionals: true,
          strict: true,
        })
        if (positionals.length > 0) throw new UsageError(`export: unexpected argument ${positionals[0]}`)
        const { out, resume, ...params } = values
        if (typeof out !== 'string') throw new UsageError('export: --out <file> is required')
        const strings = Object.fromEntries(
          Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v : undefined]),
        )
        return await (await exporter()).runExport(env, io, { out, params: strings, resume: resume === true })
      }
      case 'calibration':
        return await runCalibration(rest, env, io)
      case 'influx':
        return await runInflux(rest, env, io)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE)
        return command === undefined ? 2 : 0
      default:
        throw new UsageError(`unknown command "${command}"`)
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`skolluft: ${error.message}`)
      return 2
    }
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`skolluft: ${(error as Error).message}\n\n${USAGE}`)
      return 2
    }
    const code = (error as { code?: unknown }).code
    io.err(`skolluft: ${(error as Error).message}${typeof code === 'string' ? ` [${code}]` : ''}`)
    return 1
  }
}

/** `--json` and nothing else (the `list` subcommands). */
function jsonFlag(args: readonly string[]): boolean {
  return parseArgs({ args: [...args], options: { json: { type: 'boolean', default: false } } }).values.json
}

/** Exactly one positional argument and no options; `usage` says which, otherwise. */
function onePositional(args: readonly string[], usage: string): string {
  const { positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true })
  const [only] = positionals
  if (!only || positionals.length !== 1) throw new UsageError(usage)
  return only
}

async function runDevice(args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  switch (sub) {
    case 'add': {
      const { values } = parseArgs({
        args: [...rest],
        options: {
          site: { type: 'string' },
          id: { type: 'string' },
          model: { type: 'string', default: 'generic' },
          interval: { type: 'string', default: '60' },
          indoor: { type: 'boolean', default: false },
          height: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
        strict: true,
      })
      if (!values.site) throw new UsageError('device add: --site <siteId> is required')
      const intervalS = Number(values.interval)
      if (!Number.isInteger(intervalS) || intervalS < 1 || intervalS > 3600) {
        throw new UsageError('--interval must be whole seconds, 1–3600')
      }
      const heightM = values.height === undefined ? null : Number(values.height)
      if (heightM !== null && !(Number.isFinite(heightM) && heightM >= 0 && heightM <= 200)) {
        throw new UsageError('--height must be metres, 0–200')
      }
      return await (await admin()).deviceAdd(env, io, {
        siteId: values.site,
        deviceId: values.id,
        model: values.model,
        intervalS,
        indoor: values.indoor,
        heightM,
        json: values.json,
      })
    }
    case 'list': {
      return await (await admin()).deviceList(env, io, jsonFlag(rest))
    }
    case 'config': {
      const { values, positionals } = parseArgs({
        args: [...rest],
        options: { interval: { type: 'string' } },
        allowPositionals: true,
        strict: true,
      })
      const id = positionals[0]
      if (!id || positionals.length !== 1 || values.interval === undefined) {
        throw new UsageError('device config: give one device id and --interval <seconds>')
      }
      return await (await admin()).deviceConfig(env, io, id, { interval_s: Number(values.interval) })
    }
    case 'revoke': {
      return await (await admin()).deviceRevoke(
        env,
        io,
        onePositional(rest, 'device revoke: give exactly one device id'),
      )
    }
    default:
      throw new UsageError('device: subcommands are add, list, config, revoke')
  }
}

async function runUser(args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  switch (sub) {
    case 'add': {
      const { values } = parseArgs({
        args: [...rest],
        options: {
          role: { type: 'string' },
          email: { type: 'string' },
          site: { type: 'string', multiple: true, default: [] },
          name: { type: 'string' },
          'password-stdin': { type: 'boolean', default: false },
          json: { type: 'boolean', default: false },
        },
        strict: true,
      })
      if (values.role === undefined || values.email === undefined) {
        throw new UsageError('user add: --role <role> and --email <email> are required')
      }
      return await (await people()).userAdd(env, io, {
        role: values.role,
        email: values.email,
        sites: values.site,
        name: values.name,
        passwordStdin: values['password-stdin'],
        json: values.json,
      })
    }
    case 'list': {
      return await (await people()).userList(env, io, jsonFlag(rest))
    }
    case 'disable': {
      return await (await people()).userDisable(env, io, onePositional(rest, 'user disable: give exactly one email'))
    }
    default:
      throw new UsageError('user: subcommands are add, list, disable')
  }
}

async function runToken(args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  switch (sub) {
    case 'create': {
      const { values } = parseArgs({
        args: [...rest],
        options: {
          role: { type: 'string' },
          name: { type: 'string' },
          scope: { type: 'string', multiple: true, default: [] },
          site: { type: 'string', multiple: true, default: [] },
          'expires-days': { type: 'string' },
          json: { type: 'boolean', default: false },
        },
        strict: true,
      })
      if (values.role === undefined) throw new UsageError('token create: --role <role> is required')
      const days = values['expires-days']
      if (days !== undefined && !/^[0-9]+$/.test(days)) throw new UsageError('--expires-days must be whole days')
      return await (await people()).tokenCreate(env, io, {
        role: values.role,
        name: values.name,
        scopes: values.scope,
        sites: values.site,
        expiresDays: days === undefined ? undefined : Number(days),
        json: values.json,
      })
    }
    case 'list': {
      return await (await people()).tokenList(env, io, jsonFlag(rest))
    }
    case 'revoke': {
      return await (await people()).tokenRevoke(env, io, onePositional(rest, 'token revoke: give exactly one token id'))
    }
    default:
      throw new UsageError('token: subcommands are create, list, revoke')
  }
}

async function runCalibration(args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  const text = { type: 'string' } as const
  const json = { type: 'boolean', default: false } as const
  switch (sub) {
    case 'add': {
      const { values } = parseArgs({
        args: [...rest],
        options: {
          device: text,
          metric: text,
          slope: text,
          intercept: text,
          'valid-from': text,
          note: text,
          json,
        },
        strict: true,
      })
      return await (await calibration()).calibrationAdd(env, io, {
        device: values.device,
        metric: values.metric,
        slope: values.slope,
        intercept: values.intercept,
        validFrom: values['valid-from'],
        note: values.note,
        json: values.json,
      })
    }
    case 'fit': {
      const { values } = parseArgs({
        args: [...rest],
        options: { device: text, metric: text, reference: text, from: text, to: text, 'valid-from': text, json },
        strict: true,
      })
      return await (await calibration()).calibrationFit(env, io, {
        device: values.device,
        metric: values.metric,
        reference: values.reference,
        from: values.from,
        to: values.to,
        validFrom: values['valid-from'],
        json: values.json,
      })
    }
    case 'list': {
      const { values } = parseArgs({
        args: [...rest],
        options: { device: text, metric: text, json },
        strict: true,
      })
      return await (await calibration()).calibrationList(env, io, {
        device: values.device,
        metric: values.metric,
        json: values.json,
      })
    }
    case 'retire': {
      const { values, positionals } = parseArgs({
        args: [...rest],
        options: { at: { type: 'string' } },
        allowPositionals: true,
        strict: true,
      })
      const id = positionals[0]
      if (!id || positionals.length !== 1) throw new UsageError('calibration retire: give exactly one calibration id')
      return await (await calibration()).calibrationRetire(env, io, id, values.at)
    }
    default:
      throw new UsageError('calibration: subcommands are add, fit, list, retire')
  }
}

async function runInflux(args: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  const text = STRING_FLAG
  const flag = { type: 'boolean', default: false } as const
  switch (sub) {
    case 'setup': {
      const { values } = parseArgs({
        args: [...rest],
        options: {
          retention: text,
          apply: flag,
          init: flag,
          username: text,
          'password-file': text,
          'ingest-env': text,
          'read-env': text,
        },
        strict: true,
      })
      return await (await influx()).influxSetup(env, io, {
        retention: values.retention,
        apply: values.apply,
        init: values.init,
        username: values.username,
        passwordFile: values['password-file'],
        ingestEnv: values['ingest-env'],
        readEnv: values['read-env'],
      })
    }
    case 'check': {
      const { values } = parseArgs({ args: [...rest], options: { retention: text }, strict: true })
      return await (await influx()).influxCheck(env, io, { retention: values.retention })
    }
    default:
      throw new UsageError('influx: subcommands are setup, check')
  }
}
