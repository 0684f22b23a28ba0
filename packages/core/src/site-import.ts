import { z } from 'zod'
import { Site } from './registry.ts'

/**
 * Reading a list of sites from a file an operator brings: a CSV (as exported from a spreadsheet) or
 * the GeoJSON that `GET /api/v1/sites` serves (geojson.ts), so one installation's registry can be
 * loaded into another. Pure: the caller reads the file and writes the registry.
 *
 * Every row is validated with the `Site` schema; a bad row becomes an error and the good rows are
 * still returned, so an operator can fix a file in one pass.
 *
 * Error rows: for CSV, the line number in the file where the record starts (the header is line 1,
 * as a spreadsheet numbers rows); for GeoJSON, the 1-based position in `features` (the message names
 * the 0-based index `features[i]`). Row 0 means the file as a whole.
 */
export type SitesFormat = 'csv' | 'geojson'

export interface SiteImportError {
  readonly row: number
  readonly message: string
}

export interface SiteImportResult {
  /** Valid sites, defaults applied (the `Site` output type, which also satisfies `SiteInput`). */
  readonly sites: Site[]
  readonly errors: SiteImportError[]
}

/** Columns a CSV must have; the others fall back to the `Site` defaults when absent. */
export const SITE_CSV_REQUIRED_COLUMNS = ['id', 'name', 'kind', 'municipality', 'lat', 'lon'] as const
export const SITE_CSV_OPTIONAL_COLUMNS = ['stages', 'address', 'locality', 'demo'] as const
type SiteColumn = (typeof SITE_CSV_REQUIRED_COLUMNS)[number] | (typeof SITE_CSV_OPTIONAL_COLUMNS)[number]

/** Header spellings accepted besides the canonical names (compared trimmed and lowercased). */
const COLUMN_ALIASES: Readonly<Record<string, SiteColumn>> = {
  latitude: 'lat',
  longitude: 'lon',
  lng: 'lon',
}

const BOM = '\uFEFF'

/**
 * Guesses the format: content that opens with `{` is GeoJSON whatever the file is called (a CSV header
 * cannot start with a brace); otherwise a `.geojson`/`.json` name means GeoJSON and anything else CSV.
 */
export function detectSitesFormat(fileName: string, text: string): SitesFormat {
  const head = stripBom(text).trimStart()
  if (head.startsWith('{')) return 'geojson'
  return /\.(geo)?json$/i.test(fileName.trim()) ? 'geojson' : 'csv'
}

export function parseSitesFile(text: string, format: SitesFormat): SiteImportResult {
  return format === 'geojson' ? parseGeoJson(text) : parseCsv(text)
}

function stripBom(text: string): string {
  return text.startsWith(BOM) ? text.slice(BOM.length) : text
}

function issuesText(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(site)'}: ${issue.message}`)
    .join('; ')
}

/** Validates candidates in order, refusing an id already taken by an earlier row. */
/** A row turned into the fields of a site, values still unchecked: `Site` checks each one and names the field. */
interface Candidate {
  readonly row: number
  readonly label: string
  readonly input: Record<string, unknown>
}

function collect(candidates: readonly Candidate[]): {
  sites: Site[]
  errors: SiteImportError[]
} {
  const sites: Site[] = []
  const errors: SiteImportError[] = []
  const firstRowOfId = new Map<string, number>()
  for (const { row, label, input } of candidates) {
    const parsed = Site.safeParse(input)
    if (!parsed.success) {
      errors.push({ row, message: `${label}: ${issuesText(parsed.error)}` })
      continue
    }
    const earlier = firstRowOfId.get(parsed.data.id)
    if (earlier !== undefined) {
      errors.push({
        row,
        message: `${label}: duplicate id ${JSON.stringify(parsed.data.id)} (first used at row ${earlier})`,
      })
      continue
    }
    firstRowOfId.set(parsed.data.id, row)
    sites.push(parsed.data)
  }
  return { sites, errors }
}

// ---------------------------------------------------------------------------------------------
// GeoJSON

/**
 * The envelope only; the site fields are validated by `Site` so the messages name site fields.
 * Properties beyond the site's own (`latest`, anything a newer API adds) are ignored.
 */
const FeatureEnvelope = z.object({
  type: z.literal('Feature'),
  id: z.unknown().optional(),
  geometry: z.object({
    type: z.literal('Point'),
    // RFC 7946 §3.1.1: [longitude, latitude, optional altitude].
    coordinates: z.tuple([z.number(), z.number()], z.number()),
  }),
  properties: z.record(z.string(), z.unknown()).nullable().optional(),
})

const CollectionEnvelope = z.object({
  type: z.literal('FeatureCollection'),
  features: z.array(z.unknown()),
})

function parseGeoJson(text: string): SiteImportResult {
  let json: unknown
  try {
    json = JSON.parse(stripBom(text))
  } catch (error) {
    return { sites: [], errors: [{ row: 0, message: `not valid JSON: ${(error as Error).message}` }] }
  }
  const collection = CollectionEnvelope.safeParse(json)
  if (!collection.success) {
    return {
      sites: [],
      errors: [
        { row: 0, message: 'expected a GeoJSON FeatureCollection: {"type":"FeatureCollection","features":[…]}' },
      ],
    }
  }
  const errors: SiteImportError[] = []
  const candidates: Candidate[] = []
  collection.data.features.forEach((item, index) => {
    const row = index + 1
    const label = `features[${index}]`
    const feature = FeatureEnvelope.safeParse(item)
    if (!feature.success) {
      errors.push({ row, message: `${label}: not a Point Feature (${issuesText(feature.error)})` })
      return
    }
    const { id, geometry } = feature.data
    const properties = feature.data.properties ?? {}
    if (id !== undefined && properties.id !== undefined && id !== properties.id) {
      errors.push({
        row,
        message: `${label}: id ${JSON.stringify(id)} and properties.id ${JSON.stringify(properties.id)} differ`,
      })
      return
    }
    const [lon, lat] = geometry.coordinates
    candidates.push({
      row,
      label,
      input: {
        id: id ?? properties.id,
        name: properties.name,
        kind: properties.kind,
        stages: properties.stages,
        address: properties.address,
        locality: properties.locality,
        municipality: properties.municipality,
        lat,
        lon,
        demo: properties.demo,
      },
    })
  })
  const result = collect(candidates)
  return { sites: result.sites, errors: [...errors, ...result.errors].sort((a, b) => a.row - b.row) }
}

// ---------------------------------------------------------------------------------------------
// CSV

interface CsvRecord {
  /** Line of the file where the record starts, 1-based. */
  readonly line: number
  readonly fields: string[]
}

export class CsvSyntaxError extends Error {
  readonly code = 'CSV_SYNTAX'
  readonly line: number
  constructor(line: number, message: string) {
    super(message)
    this.name = 'CsvSyntaxError'
    this.line = line
  }
}

/**
 * RFC 4180 records: fields separated by `delimiter`, records by CRLF or LF (a lone CR too); a field in
 * double quotes may hold delimiters, line breaks and `""` for a quote. Quotes inside an unquoted field
 * are kept as text, as spreadsheets do. Throws CsvSyntaxError on a quote that is never closed.
 */
export function parseCsvRecords(text: string, delimiter: string): CsvRecord[] {
  const records: CsvRecord[] = []
  let fields: string[] = []
  let field = ''
  let quoted = false
  let fieldStarted = false
  let line = 1
  let recordLine = 1
  let quoteLine = 1
  let i = 0
  const endField = () => {
    fields.push(field)
    field = ''
    fieldStarted = false
  }
  const endRecord = () => {
    endField()
    records.push({ line: recordLine, fields })
    fields = []
  }
  while (i < text.length) {
    const ch = text[i] as string
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"'
          i += 2
          continue
        }
        quoted = false
        i += 1
        continue
      }
      if (ch === '\n' || (ch === '\r' && text[i + 1] !== '\n')) line += 1
      field += ch
      i += 1
      continue
    }
    if (ch === '"' && !fieldStarted) {
      quoted = true
      fieldStarted = true
      quoteLine = line
      i += 1
      continue
    }
    if (ch === delimiter) {
      endField()
      i += 1
      continue
    }
    if (ch === '\r' || ch === '\n') {
      endRecord()
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1
      line += 1
      recordLine = line
      continue
    }
    field += ch
    fieldStarted = true
    i += 1
  }
  if (quoted) throw new CsvSyntaxError(quoteLine, `a quoted field opened on line ${quoteLine} is never closed`)
  // A final record without a trailing line break.
  if (fieldStarted || field.length > 0 || fields.length > 0) endRecord()
  return records
}

/**
 * The delimiter is whichever of `,` `;` or tab occurs most often in the header line outside quotes.
 * Swedish spreadsheet programs export CSV with `;` because `,` is the decimal separator.
 */
export function detectCsvDelimiter(text: string): ',' | ';' | '\t' {
  const counts = { ',': 0, ';': 0, '\t': 0 }
  let quoted = false
  for (const ch of text) {
    if (ch === '"') quoted = !quoted
    else if (!quoted && (ch === '\n' || ch === '\r')) break
    else if (!quoted && (ch === ',' || ch === ';' || ch === '\t')) counts[ch] += 1
  }
  if (counts[';'] > counts[','] && counts[';'] >= counts['\t']) return ';'
  if (counts['\t'] > counts[',']) return '\t'
  return ','
}

function isBlank(record: CsvRecord): boolean {
  return record.fields.every((f) => f.trim() === '')
}

function parseCoordinate(raw: string, decimalComma: boolean): number | string {
  const text = raw.trim()
  if (text === '') return raw
  // A `;` file from a Swedish spreadsheet writes 55,7047; with `,` as delimiter a comma cannot be in a number.
  const normalised = decimalComma && /^[+-]?\d+,\d+$/.test(text) ? text.replace(',', '.') : text
  const value = Number(normalised)
  return Number.isFinite(value) ? value : raw
}

/** Swedish words for the kinds, as a municipal list would have them. */
const KIND_ALIASES: Readonly<Record<string, string>> = {
  förskola: 'preschool',
  forskola: 'preschool',
  skola: 'school',
  grundskola: 'school',
  // Urban background station ("urban bakgrund" in Naturvårdsverket's and SMHI's wording).
  bakgrund: 'background',
  bakgrundsstation: 'background',
  'urban bakgrund': 'background',
  'urban bakgrundsstation': 'background',
  referens: 'background',
  referensstation: 'background',
}

function normaliseKind(raw: string): string {
  const text = raw.trim().toLowerCase()
  return KIND_ALIASES[text] ?? text
}

/** Skolverket writes "F-klass" and "Förskoleklass" for the stage the schema calls `fklass`. */
const STAGE_ALIASES: Readonly<Record<string, string>> = {
  'f-klass': 'fklass',
  förskoleklass: 'fklass',
  forskoleklass: 'fklass',
}

function normaliseStage(raw: string): string {
  const text = raw.trim().toLowerCase()
  return STAGE_ALIASES[text] ?? text
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'ja'])
const FALSE_WORDS = new Set(['false', '0', 'no', 'nej', ''])

function parseCsv(text: string): SiteImportResult {
  const body = stripBom(text)
  const delimiter = detectCsvDelimiter(body)
  let records: CsvRecord[]
  try {
    records = parseCsvRecords(body, delimiter)
  } catch (error) {
    if (error instanceof CsvSyntaxError) return { sites: [], errors: [{ row: error.line, message: error.message }] }
    throw error
  }
  const header = records.find((r) => !isBlank(r))
  if (!header) return { sites: [], errors: [{ row: 0, message: 'the file is empty; expected a header row' }] }

  const columns = new Map<SiteColumn, number>()
  const known = new Set<string>([...SITE_CSV_REQUIRED_COLUMNS, ...SITE_CSV_OPTIONAL_COLUMNS])
  const headerProblems: string[] = []
  header.fields.forEach((raw, index) => {
    const name = raw.trim().toLowerCase()
    const column = (known.has(name) ? name : COLUMN_ALIASES[name]) as SiteColumn | undefined
    if (column === undefined) return // unknown columns are ignored
    if (columns.has(column)) headerProblems.push(`column "${column}" appears twice`)
    else columns.set(column, index)
  })
  const missing = SITE_CSV_REQUIRED_COLUMNS.filter((c) => !columns.has(c))
  if (missing.length > 0) {
    headerProblems.unshift(
      `missing required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; the header must name ` +
        `${SITE_CSV_REQUIRED_COLUMNS.join(',')} and may add ${SITE_CSV_OPTIONAL_COLUMNS.join(',')} ` +
        `(found: ${header.fields.map((f) => f.trim()).join(delimiter)})`,
    )
  }
  if (headerProblems.length > 0)
    return { sites: [], errors: [{ row: header.line, message: headerProblems.join('; ') }] }

  const errors: SiteImportError[] = []
  const candidates: Candidate[] = []
  for (const record of records) {
    if (record === header || record.line < header.line || isBlank(record)) continue
    const row = record.line
    const label = `row ${row}`
    const extra = record.fields.slice(header.fields.length).filter((f) => f.trim() !== '')
    if (extra.length > 0) {
      errors.push({
        row,
        message: `${label}: ${record.fields.length} fields but the header has ${header.fields.length} (a delimiter inside an unquoted value?)`,
      })
      continue
    }
    const get = (column: SiteColumn): string | undefined => {
      const index = columns.get(column)
      return index === undefined ? undefined : (record.fields[index] ?? '')
    }
    const optional = (column: SiteColumn): string | null | undefined => {
      const value = get(column)
      if (value === undefined) return undefined
      return value.trim() === '' ? null : value.trim()
    }
    const demoText = get('demo')?.trim().toLowerCase()
    let demo: boolean | undefined
    if (demoText !== undefined) {
      if (TRUE_WORDS.has(demoText)) demo = true
      else if (FALSE_WORDS.has(demoText)) demo = false
      else {
        errors.push({
          row,
          message: `${label}: demo: expected true/false/1/0 or empty, got ${JSON.stringify(demoText)}`,
        })
        continue
      }
    }
    const stagesText = get('stages')
    const decimalComma = delimiter !== ','
    candidates.push({
      row,
      label,
      input: {
        id: (get('id') ?? '').trim(),
        name: get('name') ?? '',
        kind: normaliseKind(get('kind') ?? ''),
        // Stage names contain neither `;` nor `,`, so either separates them.
        stages:
          stagesText === undefined
            ? undefined
            : stagesText
                .split(/[;,]/)
                .map(normaliseStage)
                .filter((s) => s !== ''),
        address: optional('address'),
        locality: optional('locality'),
        municipality: get('municipality') ?? '',
        lat: parseCoordinate(get('lat') ?? '', decimalComma),
        lon: parseCoordinate(get('lon') ?? '', decimalComma),
        demo,
      },
    })
  }
  const result = collect(candidates)
  return { sites: result.sites, errors: [...errors, ...result.errors].sort((a, b) => a.row - b.row) }
}
