import { readFile } from 'node:fs/promises'
import {
  DEFAULT_EVALUATED_PROFILES,
  EXPORT_FORMATS,
  EXPORT_RESOLUTIONS,
  EXPORT_VALUES,
  exportColumns,
  exportSchemaId,
  PROFILES_VERSION,
} from '@skolluft/core'
import { z } from 'zod'
import type { ExportRequest } from './query.ts'

/**
 * The manifest of an export: exactly what a file holds, so a study can cite it (docs/export.md). Written beside
 * a file by `skolluft export` and answered by `GET /api/v1/export/manifest` for the same query.
 */

/** Licence and attribution until the deployment sets them (EXPORT_LICENCE, EXPORT_ATTRIBUTION). */
export const DEFAULT_EXPORT_LICENCE = 'not specified: set EXPORT_LICENCE (e.g. CC-BY-4.0) for your deployment'
export const DEFAULT_EXPORT_ATTRIBUTION =
  'skolluft air quality measurements; set EXPORT_ATTRIBUTION for your deployment'

/** An empty variable counts as unset (as runtime's unsetIfEmpty). */
const unsetIfEmpty = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v)

export const ExportEnv = z.object({
  EXPORT_LICENCE: z.preprocess(unsetIfEmpty, z.string().max(500).default(DEFAULT_EXPORT_LICENCE)),
  EXPORT_ATTRIBUTION: z.preprocess(unsetIfEmpty, z.string().max(1000).default(DEFAULT_EXPORT_ATTRIBUTION)),
  /** The alerts service's setting, read here only to name the deployment's threshold profiles in manifests. */
  ALERT_PROFILES: z
    .string()
    .optional()
    .transform((v) =>
      v === undefined || v.trim() === ''
        ? [...DEFAULT_EVALUATED_PROFILES]
        : v
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== ''),
    ),
})
export type ExportEnv = z.infer<typeof ExportEnv>

/** `id@version` of the threshold profiles a deployment evaluates (core PROFILES_VERSION versions them all). */
export function thresholdProfileIds(env: ExportEnv): string[] {
  return env.ALERT_PROFILES.map((id) => `${id}@${PROFILES_VERSION}`)
}

const Software = z.object({ name: z.string(), version: z.string() })
export type Software = z.infer<typeof Software>

/** One correction the rows name: its id (`name@version`) and what it is (formula, or a calibration's numbers). */
export const ManifestCorrection = z.object({
  id: z.string(),
  description: z.string(),
  parameters: z.record(z.string(), z.unknown()).optional(),
})
export type ManifestCorrection = z.infer<typeof ManifestCorrection>

export const Manifest = z.object({
  schema: z.string().regex(/^skolluft-export\/\d+$/),
  file: z.string(),
  format: z.enum(EXPORT_FORMATS),
  resolution: z.enum(EXPORT_RESOLUTIONS),
  values: z.enum(EXPORT_VALUES),
  columns: z.array(z.string()),
  query: z.record(z.string(), z.string()),
  rows: z.number().int().min(0),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  software: Software,
  /** Every correction chain element the rows name (values=corrected); empty with values=raw. */
  corrections: z.array(ManifestCorrection),
  /** Threshold profiles the deployment evaluates breaches with (id@version); exports carry no breach columns. */
  threshold_profiles: z.array(z.string()),
  quality_checks: z.string(),
  licence: z.string(),
  attribution: z.string(),
  generated_at: z.iso.datetime(),
})
export type Manifest = z.infer<typeof Manifest>

const PackageJson = z.object({ name: z.string(), version: z.string() })

/** The platform's name and version, from the repository's package.json. */
export async function softwareVersion(): Promise<Software> {
  try {
    const parsed = PackageJson.safeParse(
      JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')),
    )
    if (parsed.success) return { name: 'skolluft', version: parsed.data.version }
  } catch {
    // Fall through: a manifest without a version is still a manifest.
  }
  return { name: 'skolluft', version: 'unknown' }
}

export interface ManifestInput {
  readonly request: ExportRequest
  /** The query as the caller spelled it (parameter names of the API). */
  readonly query: Readonly<Record<string, string>>
  readonly file: string
  readonly rows: number
  readonly bytes: number
  readonly sha256: string
  readonly software: Software
  readonly corrections: readonly ManifestCorrection[]
  readonly qualityChecks: string
  readonly env: ExportEnv
  readonly generatedAt: number
}

export function buildManifest(input: ManifestInput): Manifest {
  const { request } = input
  return {
    schema: exportSchemaId(request.schema),
    file: input.file,
    format: request.format,
    resolution: request.resolution,
    values: request.values,
    columns: [...exportColumns(request.schema, request.resolution)],
    query: { ...input.query },
    rows: input.rows,
    bytes: input.bytes,
    sha256: input.sha256,
    software: input.software,
    corrections: [...input.corrections],
    threshold_profiles: thresholdProfileIds(input.env),
    quality_checks: input.qualityChecks,
    licence: input.env.EXPORT_LICENCE,
    attribution: input.env.EXPORT_ATTRIBUTION,
    generated_at: new Date(input.generatedAt).toISOString(),
  }
}
