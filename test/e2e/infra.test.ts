import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { AlertsEnv } from '@skolluft/alerts'
import { ApiEnv } from '@skolluft/api'
import { GatewayConfig } from '@skolluft/gateway'
import { IngestConfig } from '@skolluft/ingest'
import { closedPort, tempDir, waitFor } from '@skolluft/testkit'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, parseAllDocuments } from 'yaml'
import { z } from 'zod'
import { AlertsKeyEnv } from '../../cli/src/alerts-key.ts'
import { InfluxEnv } from '../../cli/src/commands/influx.ts'
import { LiveEnv } from '../../cli/src/commands/services.ts'
import { CommonConfig, SimEnv } from '../../cli/src/config.ts'
import {
  entrypointEnv,
  MOSQUITTO_ENTRYPOINT,
  type MosquittoUser,
  mosquittoAvailable,
  startMosquitto,
  type TestMosquitto,
} from '../support/mosquitto.ts'

/**
 * infra/ holds deployment files that cannot run here (no Docker engine, no kubectl, no network): this checks what can
 * be checked without them. Every YAML parses; compose services and Kubernetes workloads have what a deployment needs
 * (images, health checks, probes, resources, no literal secrets); the settings named anywhere are listed in the
 * .env examples and validate against the services' own zod schemas; the Mosquitto entry point and access rules run
 * against Debian's mosquitto; the container health check script runs against real servers.
 */
const INFRA = fileURLToPath(new URL('../../infra/', import.meta.url))
const read = (path: string) => readFileSync(join(INFRA, path), 'utf8')
const execFileAsync = promisify(execFile)

const Env = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))
const ComposeService = z.object({
  image: z.string().optional(),
  build: z.object({ context: z.string(), dockerfile: z.string() }).optional(),
  command: z.array(z.string()).optional(),
  environment: Env.optional(),
  profiles: z.array(z.string()).optional(),
  healthcheck: z.object({ test: z.array(z.string()).min(2) }).optional(),
})
const Compose = z.object({ services: z.record(z.string(), ComposeService), volumes: z.record(z.string(), z.null()) })

const K8sDoc = z.looseObject({
  apiVersion: z.string().min(1),
  kind: z.string().min(1),
  metadata: z.looseObject({ name: z.string().min(1), namespace: z.string().optional() }),
})
const Container = z.looseObject({
  name: z.string(),
  image: z.string(),
  args: z.array(z.string()).optional(),
  env: z
    .array(z.looseObject({ name: z.string(), value: z.string().optional(), valueFrom: z.unknown().optional() }))
    .optional(),
  readinessProbe: z.looseObject({}).optional(),
  livenessProbe: z.looseObject({}).optional(),
  resources: z.object({
    requests: z.object({ cpu: z.string(), memory: z.string() }),
    limits: z.object({ cpu: z.string(), memory: z.string() }),
  }),
})
const Workload = z.looseObject({
  kind: z.enum(['Deployment', 'StatefulSet']),
  metadata: z.object({ name: z.string(), namespace: z.literal('skolluft'), labels: z.record(z.string(), z.string()) }),
  spec: z.looseObject({
    replicas: z.number().int().min(1),
    template: z.looseObject({ spec: z.looseObject({ containers: z.array(Container).min(1) }) }),
  }),
})

/** Names an env example lists: `NAME=…` or `# NAME=…` at the start of a line. */
function listedNames(text: string): Set<string> {
  return new Set([...text.matchAll(/^(?:# )?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] ?? ''))
}

/** `NAME=value` lines that are not commented out. */
function setValues(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']))
}

/** Compose interpolation (${VAR}, ${VAR:-default}, ${VAR:?message}, $$) over `env`; a missing required one throws. */
function interpolate(value: string, env: Record<string, string>): string {
  return value
    .replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_all, name: string, op: string | undefined, arg: string) => {
      const set = env[name]
      if (set !== undefined && set !== '') return set
      if (op === '?') throw new Error(`${name}: ${arg}`)
      return op === '-' ? arg : ''
    })
    .replaceAll('$$', '$')
}

const composeText = read('compose.yaml')
const compose = Compose.parse(parse(composeText, { merge: true }))
const envExample = read('.env.example')
const systemdExample = read('skolluft.env.example')
// kustomization.yaml is kustomize's, not a Kubernetes object: checked on its own.
const k8sFiles = readdirSync(join(INFRA, 'k8s')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
const k8sDocs = k8sFiles.flatMap((file) =>
  parseAllDocuments(read(join('k8s', file))).map((doc) => {
    expect(doc.errors, file).toEqual([])
    return { file, doc: doc.toJS() as unknown }
  }),
)
const workloads = k8sDocs.flatMap(({ file, doc }) => {
  const w = Workload.safeParse(doc)
  return w.success ? [{ file, w: w.data }] : []
})
const configMap = z
  .object({ data: z.record(z.string(), z.string()) })
  .parse(k8sDocs.find(({ doc }) => K8sDoc.parse(doc).metadata.name === 'skolluft-config')?.doc)

/** The skolluft services in compose: those built from infra/Dockerfile. */
const skolluftServices = Object.entries(compose.services).filter(([, s]) => s.build !== undefined)

/** Settings the services read, from their zod schemas (the lists cannot drift from the code). */
const SCHEMA_KEYS = new Set(
  [CommonConfig, SimEnv, GatewayConfig, IngestConfig, ApiEnv, AlertsEnv, AlertsKeyEnv, InfluxEnv, LiveEnv].flatMap(
    (s) => Object.keys(s.shape),
  ),
)

describe('infra: YAML and structure', () => {
  it('parses every YAML file under infra/ without errors or warnings', () => {
    const files = [
      'compose.yaml',
      ...k8sFiles.map((f) => join('k8s', f)),
      'k8s/kustomization.yaml',
      'grafana/provisioning/datasources/influxdb.yaml',
      'grafana/provisioning/dashboards/skolluft.yaml',
    ]
    for (const file of files) {
      for (const doc of parseAllDocuments(read(file), { merge: true })) {
        expect(doc.errors, file).toEqual([])
        expect(doc.warnings, file).toEqual([])
      }
    }
    expect(k8sDocs.length).toBeGreaterThan(10)
  })

  it('compose: every service has an image or a build, and a health check', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.image ?? service.build, name).toBeDefined()
      expect(service.healthcheck?.test[0], name).toMatch(/^CMD(-SHELL)?$/)
    }
    expect(skolluftServices.map(([n]) => n).sort()).toEqual(['alerts', 'api-1', 'api-2', 'ingest-1', 'ingest-2'])
    for (const name of ['influxdb', 'mosquitto', 'redis', 'grafana']) expect(compose.services[name], name).toBeDefined()
    expect(compose.services.mosquitto?.profiles).toEqual(['mosquitto'])
  })

  it('compose: no literal secrets, and a missing secret fails loudly', () => {
    const SECRET = /PASSWORD|TOKEN|SECRET|_KEY$|AUTH|REDIS_URL|SMTP_URL/
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (!SECRET.test(key)) continue
        // Either passed through from .env (null) or interpolated with ${VAR:?…}, never written here.
        if (value === null) continue
        expect(String(value), `${name}.${key}`).toMatch(/\$\{[A-Z0-9_]+:\?[^}]+\}/)
      }
    }
    // The example's required secrets are empty: `docker compose config` with it unchanged would refuse to start.
    const values = setValues(envExample)
    expect(() => interpolate(composeText.replace(/^\s*#.*$/gm, ''), values)).toThrow(
      /INFLUX_(READ_)?TOKEN|INFLUX_ADMIN|MQTT_|REDIS_|GRAFANA_/,
    )
  })

  it('compose: ingest workers share one group with their own client ids and spools', () => {
    const env = (name: string) => compose.services[name]?.environment ?? {}
    const [one, two] = [env('ingest-1'), env('ingest-2')]
    expect(one.INGEST_SHARED_GROUP).toBe(two.INGEST_SHARED_GROUP)
    expect(one.INGEST_CLIENT_ID).not.toBe(two.INGEST_CLIENT_ID)
    expect(one.INFLUX_SPOOL_PATH).toBeDefined()
    expect(one.INFLUX_SPOOL_PATH).not.toBe(two.INFLUX_SPOOL_PATH)
    // Only writers of readings have a spool (cli/src/data-dir.ts): the API and alerts never open one.
    for (const name of ['api-1', 'api-2', 'alerts']) expect(env(name).INFLUX_SPOOL_PATH, name).toBeUndefined()
    expect(String(env('api-1').REDIS_URL)).toMatch(/^redis:\/\//)
  })

  it('k8s: every document has apiVersion, kind and metadata; workloads have probes and resources', () => {
    for (const { file, doc } of k8sDocs) {
      const parsed = K8sDoc.safeParse(doc)
      expect(parsed.success, `${file}: ${parsed.error?.message}`).toBe(true)
      if (parsed.data?.kind !== 'Namespace') {
        expect(parsed.data?.metadata.namespace, file).toBe('skolluft')
      }
    }
    const names = workloads.map(({ w }) => w.metadata.name).sort()
    expect(names).toEqual(['alerts', 'api', 'gateway', 'ingest', 'mosquitto', 'redis'])
    for (const { file, w } of workloads) {
      for (const c of w.spec.template.spec.containers) {
        expect(c.readinessProbe, `${file} readiness`).toBeDefined()
        // Workers serve nothing: no liveness probe for them (ingest.yaml says why).
        if (!['ingest', 'alerts'].includes(w.metadata.name)) expect(c.livenessProbe, `${file} liveness`).toBeDefined()
      }
    }
    const ingest = workloads.find(({ w }) => w.metadata.name === 'ingest')?.w
    expect(ingest?.kind).toBe('StatefulSet')
    expect(ingest?.spec.replicas).toBe(2)
    const clientId = ingest?.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'INGEST_CLIENT_ID')
    expect(clientId?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } })
    const api = workloads.find(({ w }) => w.metadata.name === 'api')?.w
    expect(api?.spec.template.spec.containers[0]?.readinessProbe).toMatchObject({ httpGet: { path: '/healthz' } })
  })

  it('k8s: only the ingest gets the write token and a spool; the api and alerts read with the read-only token', () => {
    const env = (name: string) =>
      workloads.find(({ w }) => w.metadata.name === name)?.w.spec.template.spec.containers[0]?.env ?? []
    const tokenKey = (name: string) => env(name).find((e) => e.name === 'INFLUX_TOKEN')?.valueFrom
    expect(tokenKey('ingest')).toEqual({ secretKeyRef: { name: 'skolluft-secrets', key: 'INFLUX_TOKEN' } })
    expect(env('ingest').map((e) => e.name)).toContain('INFLUX_SPOOL_PATH')
    for (const name of ['api', 'alerts']) {
      expect(tokenKey(name), name).toEqual({ secretKeyRef: { name: 'skolluft-secrets', key: 'INFLUX_READ_TOKEN' } })
      expect(
        env(name).map((e) => e.name),
        name,
      ).not.toContain('INFLUX_SPOOL_PATH')
    }
  })

  it('k8s: the Secret template holds no values, and kustomization lists files that exist', () => {
    const secret = k8sDocs.map(({ doc }) => K8sDoc.parse(doc)).find((d) => d.kind === 'Secret')
    const data = z.object({ stringData: z.record(z.string(), z.string()) }).parse(secret)
    expect(Object.keys(data.stringData).length).toBeGreaterThan(3)
    for (const [key, value] of Object.entries(data.stringData)) expect(value, key).toBe('')
    const kustomization = z.object({ resources: z.array(z.string()) }).parse(parse(read('k8s/kustomization.yaml')))
    for (const file of kustomization.resources) expect(k8sFiles, file).toContain(file)
    expect(kustomization.resources).not.toContain('secret.example.yaml')
  })

  it('k8s: the Mosquitto ConfigMap is a copy of infra/mosquitto', () => {
    const cm = k8sDocs.find(({ doc }) => K8sDoc.parse(doc).metadata.name === 'mosquitto-config')?.doc
    const data = z.object({ data: z.record(z.string(), z.string()) }).parse(cm).data
    expect(Object.keys(data).sort()).toEqual(['docker-entrypoint.sh', 'healthcheck.sh', 'mosquitto.conf'])
    for (const file of ['mosquitto.conf', 'docker-entrypoint.sh', 'healthcheck.sh']) {
      expect(data[file], file).toBe(read(join('mosquitto', file)))
    }
  })

  it('grafana: the data source is Flux on InfluxDB 2, and every query reads the bucket variable', () => {
    const datasource = z
      .object({
        datasources: z.array(z.looseObject({ uid: z.string(), type: z.string(), jsonData: z.looseObject({}) })),
      })
      .parse(parse(read('grafana/provisioning/datasources/influxdb.yaml'))).datasources[0]
    expect(datasource).toMatchObject({ type: 'influxdb', jsonData: { version: 'Flux' } })
    const Target = z.object({ query: z.string(), datasource: z.object({ uid: z.string() }) })
    const dashboard = z
      .object({
        panels: z.array(z.looseObject({ title: z.string(), targets: z.array(Target).min(1) })).min(4),
        templating: z.object({ list: z.array(z.looseObject({ name: z.string() })) }),
      })
      .parse(JSON.parse(read('grafana/dashboards/skolluft-readings.json')))
    expect(dashboard.templating.list.map((v) => v.name)).toContain('bucket')
    // The line protocol schema of the plan: measurement `reading`, these fields.
    const FIELDS = new Set(['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh', 'received_at'])
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        // \u0024 is `$`: Grafana's variable syntax, not a template string.
        expect(target.query, panel.title).toContain('from(bucket: "\u0024{bucket}")')
        expect(target.query, panel.title).toContain('r._measurement == "reading"')
        expect(target.datasource.uid, panel.title).toBe(datasource?.uid)
        for (const m of target.query.matchAll(/r\._field == "([a-z0-9_]+)"/g))
          expect(FIELDS, panel.title).toContain(m[1])
      }
    }
  })
})

describe('infra: settings', () => {
  const listed = listedNames(envExample)
  const listedSystemd = listedNames(systemdExample)

  it('lists every key of the services’ env schemas in both env examples', () => {
    expect(SCHEMA_KEYS.size).toBeGreaterThan(30)
    for (const key of SCHEMA_KEYS) {
      expect(listed, `.env.example: ${key}`).toContain(key)
      expect(listedSystemd, `skolluft.env.example: ${key}`).toContain(key)
    }
  })

  it('lists every variable compose and the k8s ConfigMap and workloads name', () => {
    const uncommented = composeText.replace(/^\s*#.*$/gm, '')
    const interpolated = [...uncommented.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1] ?? '')
    const containerKeys = skolluftServices.flatMap(([, s]) => Object.keys(s.environment ?? {}))
    const k8sEnv = workloads
      .filter(({ w }) => w.spec.template.spec.containers[0]?.image.startsWith('skolluft'))
      .flatMap(({ w }) => w.spec.template.spec.containers.flatMap((c) => (c.env ?? []).map((e) => e.name)))
      .filter((name) => name !== 'POD_NAME')
    for (const name of [
      ...interpolated,
      ...containerKeys,
      ...Object.keys(configMap.data),
      ...k8sEnv,
      'COMPOSE_PROFILES',
    ]) {
      expect(listed, name).toContain(name)
    }
  })

  it('names nothing in the env examples that nothing reads', () => {
    const known = SCHEMA_KEYS
    for (const name of listedSystemd) expect(known, `skolluft.env.example: ${name}`).toContain(name)
    const elsewhere = `${composeText}\n${k8sDocs.map(({ doc }) => JSON.stringify(doc)).join('\n')}`
    for (const name of listed) {
      if (!known.has(name)) expect(elsewhere, `.env.example: ${name}`).toContain(name)
    }
  })

  /** Each compose service's environment as the container would see it, with dummy secrets. */
  function containerEnv(service: string): Record<string, string> {
    const dotEnv = Object.fromEntries(
      Object.entries(setValues(envExample)).map(([k, v]) => [k, v === '' ? `dummy-${k.toLowerCase()}-secret` : v]),
    )
    const env: Record<string, string> = {}
    for (const [key, value] of Object.entries(compose.services[service]?.environment ?? {})) {
      const resolved = value === null ? dotEnv[key] : interpolate(String(value), dotEnv)
      if (resolved !== undefined) env[key] = resolved
    }
    return env
  }

  it('each compose service’s environment passes the schema its command loads (cli services.ts)', () => {
    const LiveEnv = z.object({ LIVE_MQTT_URL: z.url({ protocol: /^mqtts?$/ }) })
    const cases = [
      ['ingest-1', CommonConfig.extend(IngestConfig.shape).extend(InfluxEnv.shape)],
      ['ingest-2', CommonConfig.extend(IngestConfig.shape).extend(InfluxEnv.shape)],
      ['api-1', CommonConfig.extend(ApiEnv.shape).extend(LiveEnv.shape).extend(AlertsKeyEnv.shape)],
      ['alerts', CommonConfig.extend(AlertsEnv.shape).extend(AlertsKeyEnv.shape)],
    ] as const
    for (const [service, schema] of cases) {
      const result = schema.safeParse(containerEnv(service))
      expect(result.error?.issues ?? [], service).toEqual([])
    }
    expect(containerEnv('ingest-1')).toMatchObject({ STORE: 'influxdb', MQTT_USERNAME: 'svc.ingest' })
  })

  it('compose: only the ingest workers get the write token; the API, alerts and Grafana get the read-only one', () => {
    const write = containerEnv('ingest-1').INFLUX_TOKEN
    const readOnly = containerEnv('api-1').INFLUX_TOKEN
    expect(write).toMatch(/^dummy-influx_token-/)
    expect(readOnly).toMatch(/^dummy-influx_read_token-/)
    expect(containerEnv('ingest-2').INFLUX_TOKEN).toBe(write)
    for (const service of ['api-1', 'api-2', 'alerts'])
      expect(containerEnv(service).INFLUX_TOKEN, service).toBe(readOnly)
    expect(containerEnv('grafana').INFLUX_GRAFANA_TOKEN).toBe(readOnly)
    // No service gets InfluxDB's all-access token.
    const admin = containerEnv('influxdb').DOCKER_INFLUXDB_INIT_ADMIN_TOKEN
    expect(admin).toMatch(/^dummy-influx_admin_token-/)
    for (const service of Object.keys(compose.services).filter((s) => s !== 'influxdb')) {
      expect(Object.values(containerEnv(service)), service).not.toContain(admin)
    }
  })

  it('the k8s ConfigMap passes the api’s and the ingest’s schemas', () => {
    const secrets = { INFLUX_TOKEN: 'dummy', MQTT_USERNAME: 'svc.api', MQTT_PASSWORD: 'dummy' }
    for (const schema of [
      CommonConfig.extend(ApiEnv.shape),
      CommonConfig.extend(IngestConfig.shape).extend(InfluxEnv.shape),
      CommonConfig.extend(AlertsEnv.shape),
    ]) {
      const result = schema.safeParse({ ...configMap.data, ...secrets })
      expect(result.error?.issues ?? []).toEqual([])
    }
  })
})

describe.runIf(mosquittoAvailable())('infra: the Mosquitto entry point and access rules (Debian mosquitto)', () => {
  const PASSWORDS = { ingest: 'ingest-pw', api: 'api-pw', alerts: 'alerts-pw' }
  const DEVICES = [
    { username: 'dev-a', password: 'secret-a' },
    { username: 'dev-b', password: 'secret-b' },
  ]
  let broker: TestMosquitto
  let scratch: Awaited<ReturnType<typeof tempDir>>
  const clients: MqttClient[] = []

  const connect = async (user: MosquittoUser, protocolVersion: 4 | 5 = 5, clientId?: string) => {
    const client = await mqtt.connectAsync(broker.url, {
      username: user.username,
      password: user.password,
      protocolVersion,
      reconnectPeriod: 0,
      ...(clientId === undefined ? {} : { clientId }),
    })
    clients.push(client)
    return client
  }
  const device = (i: number) => DEVICES[i] ?? { username: '', password: '' }

  /** Runs the entry point on a device file with this content; resolves to its exit code and output. */
  const runEntrypoint = async (devicesFile: string) => {
    const dir = join(scratch.path, `run-${Math.random().toString(16).slice(2)}`)
    await mkdir(dir)
    await writeFile(join(dir, 'devices.passwd'), devicesFile)
    return execFileAsync('sh', [MOSQUITTO_ENTRYPOINT], {
      env: {
        ...entrypointEnv(dir),
        MOSQUITTO_CONF: join(dir, 'missing.conf'),
        MQTT_INGEST_PASSWORD: 'x',
        MQTT_API_PASSWORD: 'x',
        MQTT_ALERTS_PASSWORD: 'x',
      },
    }).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: error.code ?? -1,
        output: `${error.stdout ?? ''}${error.stderr ?? ''}`,
      }),
    )
  }

  beforeAll(async () => {
    scratch = await tempDir('skolluft-infra-mosquitto-')
    broker = await startMosquitto({ devices: DEVICES, passwords: PASSWORDS })
  })

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true)
    await broker?.close()
    await scratch?.cleanup()
  })

  it('refuses to start without a service password', async () => {
    const dir = join(scratch.path, 'no-password')
    await mkdir(dir)
    const failed = await execFileAsync('sh', [MOSQUITTO_ENTRYPOINT], {
      env: { ...entrypointEnv(dir), MQTT_INGEST_PASSWORD: 'x' },
    }).catch((error: unknown) => error)
    expect(String(failed)).toMatch(/MQTT_API_PASSWORD is not set/)
  })

  it('refuses a device file it cannot turn into logins: old hashes, bad ids, a device named twice', async () => {
    const good = readFileSync(join(broker.dir, 'devices.passwd'), 'utf8').trim().split('\n')
    const [lineA = '', lineB = ''] = good
    // Mosquitto 1.x's `$6$` (SHA-512) hash; a service-like name (a dot); a device twice.
    const old = await runEntrypoint(`${lineA}\nold-dev:$6$c2FsdA==$aGFzaA==\n`)
    expect(old.code).not.toBe(0)
    expect(old.output).toContain("line(s) 2: not '<device id>:$7$…'")
    expect(old.output).not.toContain('aGFzaA')
    const dotted = await runEntrypoint(`svc.ingest:${lineB.slice(lineB.indexOf(':') + 1)}\n`)
    expect(dotted.output).toContain('line(s) 1: not')
    const twice = await runEntrypoint(`${lineA}\n\n${lineA}\n`)
    expect(twice.code).not.toBe(0)
    expect(twice.output).toContain('names these devices more than once: dev-a')
  })

  it('lets a device publish only to its own topics, into the ingest’s shared subscription and the api', async () => {
    const ingest = await connect(broker.services.ingest)
    const api = await connect(broker.services.api)
    const alerts = await connect(broker.services.alerts)
    const devA = await connect(device(0))
    const received = { ingest: [] as string[], api: [] as string[], alerts: [] as string[] }
    ingest.on('message', (topic, payload) => received.ingest.push(`${topic} ${payload.toString()}`))
    api.on('message', (topic, payload) => received.api.push(`${topic} ${payload.toString()}`))
    alerts.on('message', (topic) => received.alerts.push(topic))
    await ingest.subscribeAsync('$share/ingest/aq/v1/devices/+/telemetry', { qos: 1 })
    await api.subscribeAsync(['aq/v1/devices/+/telemetry', 'aq/v1/devices/+/status'], { qos: 0 })
    await alerts.subscribeAsync('aq/v1/events/readings-committed', { qos: 1 })

    for (const [client, topic] of [
      [devA, 'aq/v1/devices/dev-b/telemetry'],
      [devA, 'aq/v1/devices/dev-a/config'],
      [devA, '$CONTROL/dynamic-security/v1'],
      [api, 'aq/v1/events/readings-committed'],
      [alerts, 'aq/v1/devices/dev-a/config'],
    ] as const) {
      await expect(client.publishAsync(topic, 'forged', { qos: 1 }), topic).rejects.toThrow(/Not authorized/)
    }
    await devA.publishAsync('aq/v1/devices/dev-a/telemetry', 'own', { qos: 1 })
    await devA.publishAsync('aq/v1/devices/dev-a/status', 'online', { qos: 1 })
    await ingest.publishAsync('aq/v1/events/readings-committed', '{}', { qos: 1 })
    await waitFor(
      () => received.ingest.length > 0 && received.api.length > 1 && received.alerts.length > 0,
      'telemetry at the ingest and the api, the event at alerts',
    )
    expect(received.ingest).toEqual(['aq/v1/devices/dev-a/telemetry own'])
    expect(received.api).toEqual(['aq/v1/devices/dev-a/telemetry own', 'aq/v1/devices/dev-a/status online'])
    expect(received.alerts).toEqual(['aq/v1/events/readings-committed'])
    await expect(
      mqtt.connectAsync(broker.url, { username: 'dev-a', password: 'wrong', reconnectPeriod: 0 }),
    ).rejects.toThrow(/Not authorized|Bad username or password/)
  })

  it('refuses a device’s SUBSCRIBE to the ingest’s group and to other devices’ topics (SUBACK failure)', async () => {
    const forbidden = [
      '$share/ingest/aq/v1/devices/+/telemetry',
      '$share/ingest/aq/v1/devices/dev-a/telemetry',
      '$share/other/#',
      'aq/v1/devices/+/telemetry',
      'aq/v1/devices/dev-b/telemetry',
      'aq/v1/devices/dev-b/config',
      'aq/v1/events/readings-committed',
      '#',
      '$CONTROL/dynamic-security/#',
    ]
    // [MQTT-3.9.3]: 0x87 Not authorized in v5, 0x80 Failure in 3.1.1.
    for (const [protocolVersion, failure] of [
      [5, 0x87],
      [4, 0x80],
    ] as const) {
      const client = await connect(device(0), protocolVersion)
      for (const filter of forbidden) {
        await expect(client.subscribeAsync(filter, { qos: 1 }), `v${protocolVersion} ${filter}`).rejects.toMatchObject({
          packet: { granted: [failure] },
        })
      }
    }
    // The api and alerts accounts cannot join the ingest's group either: only svc.ingest may.
    const api = await connect(broker.services.api)
    await expect(api.subscribeAsync('$share/ingest/aq/v1/devices/+/telemetry', { qos: 1 })).rejects.toMatchObject({
      packet: { granted: [0x87] },
    })

    // Its own config it may read: the retained one is delivered on SUBSCRIBE.
    const ingest = await connect(broker.services.ingest)
    await ingest.publishAsync('aq/v1/devices/dev-a/config', '{"interval_s":60}', { qos: 1, retain: true })
    const devA = await connect(device(0))
    const config = new Promise<string>((resolve) => devA.once('message', (t, p) => resolve(`${t} ${p.toString()}`)))
    expect(await devA.subscribeAsync('aq/v1/devices/dev-a/config', { qos: 1 })).toMatchObject([{ qos: 1 }])
    expect(await config).toBe('aq/v1/devices/dev-a/config {"interval_s":60}')
  })

  it('loses nothing to a device that tries to join the ingest’s group', async () => {
    const TOTAL = 300
    const ingest = await connect(broker.services.ingest, 5, 'svc.ingest-solo')
    let received = 0
    ingest.on('message', () => {
      received += 1
    })
    await ingest.subscribeAsync('$share/solo/aq/v1/devices/+/telemetry', { qos: 1 })
    const rogue = await connect(device(1), 5)
    await expect(rogue.subscribeAsync('$share/solo/aq/v1/devices/+/telemetry', { qos: 1 })).rejects.toThrow()
    const devA = await connect(device(0), 4)
    for (let i = 0; i < TOTAL; i += 1) await devA.publishAsync('aq/v1/devices/dev-a/telemetry', String(i), { qos: 1 })
    await waitFor(() => received === TOTAL, `all ${TOTAL} messages at the ingest (got ${received})`)
  })

  it('gives the health check account the broker uptime, generated at start', async () => {
    expect(broker.services.health.password).toMatch(/^[0-9a-f]{48}$/)
    const health = await connect(broker.services.health, 4)
    const uptime = new Promise<string>((resolve) => health.once('message', (topic) => resolve(topic)))
    await health.subscribeAsync('$SYS/broker/uptime')
    expect(await uptime).toBe('$SYS/broker/uptime')
    await expect(health.subscribeAsync('$SYS/#')).rejects.toMatchObject({ packet: { granted: [0x80] } })
  })
})

describe('infra: the container health check (infra/docker/healthcheck.mjs)', () => {
  const script = join(INFRA, 'docker/healthcheck.mjs')
  let status = 200
  let server: Server
  let port = 0

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404
      res.end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    port = typeof address === 'object' && address !== null ? address.port : 0
  })

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve))
  })

  const run = (role: string, env: Record<string, string>) =>
    execFileAsync(process.execPath, [script, role], { env: { ...process.env, ...env } }).then(
      () => 0,
      (error: { code?: number }) => error.code ?? -1,
    )

  it('api: healthy on 200 from /healthz, unhealthy on 503', async () => {
    status = 200
    expect(await run('api', { PORT: String(port) })).toBe(0)
    status = 503
    expect(await run('api', { PORT: String(port) })).toBe(1)
  })

  it('ingest, alerts and gateway: healthy when the broker port accepts, unhealthy when closed', async () => {
    expect(await run('ingest', { MQTT_URL: `mqtt://127.0.0.1:${port}` })).toBe(0)
    expect(await run('gateway', { MQTT_PORT: String(port) })).toBe(0)
    const closed = await closedPort()
    expect(await run('alerts', { MQTT_URL: `mqtt://127.0.0.1:${closed}` })).toBe(1)
    expect(await run('gateway', { MQTT_PORT: String(closed) })).toBe(1)
  })
})
