import {
  EXPORT_CONTENT_TYPES,
  exportSchemaId,
  LATEST_EXPORT_SCHEMA,
  METRICS,
  type Permission,
  SiteFeature,
  SiteFeatureCollection,
} from '@skolluft/core'
import { ExportQueryParams, MAX_EXPORT_IDS, Manifest } from '@skolluft/export'
import { MAX_REJECTS_PER_REQUEST, RegistryQuery, RegistrySnapshot, RejectsBody } from '@skolluft/storage'
import { Router } from 'express'
import { z } from 'zod'
import { methodNotAllowed } from '../problem.ts'
import { MAX_SERIES_POINTS, MAX_SERIES_SPAN, SeriesQueryParams } from '../series-query.ts'
import {
  CreatedSubscriptionResponse,
  DeliveriesQuery,
  DeliveryAttemptsResponse,
  DeliveryListResponse,
  MAX_DELIVERIES_LIMIT,
  MAX_SUBSCRIPTIONS_PER_USER,
  MarkReadBody,
  MarkReadResponse,
  NotificationListResponse,
  NotificationsQuery,
  SubscriptionBody,
  SubscriptionListResponse,
  UnsubscribeQuery,
} from './alerts.ts'
import { AuditQuery } from './audit.ts'
import { LoginBody, SessionResponse, SetupBody } from './auth.ts'
import {
  BreachComment,
  BreachDetailResponse,
  BreachesQuery,
  BreachListResponse,
  BreachResponse,
  CommentBody,
  MAX_BREACHES_LIMIT,
} from './breaches.ts'
import {
  CalibrationBody,
  CalibrationListResponse,
  CalibrationResponse,
  CalibrationsQuery,
  MAX_FIT_SPAN_MS,
  RetireBody,
} from './calibrations.ts'
import { ExceedancesQuery, ExceedancesResponse, FIRST_EXCEEDANCE_YEAR } from './exceedances.ts'
import { EXPORT_QUOTA, MAX_PUBLIC_EXPORT_SPAN } from './export.ts'
import { SERVICE_BURST, SERVICE_RATE_PER_S } from './internal.ts'
import {
  FollowUpQuery,
  FollowUpResponse,
  MeasureCatalogueBody,
  MeasureCatalogueResponse,
  SiteMeasureBody,
  SiteMeasureListResponse,
  SiteMeasureResponse,
} from './measures.ts'
import { MUNICIPAL_CSV_COLUMNS, MunicipalReportQuery, MunicipalReportResponse } from './municipal-report.ts'
import { ReplayQuery } from './public-info.ts'
import { RejectsQuery } from './rejects.ts'
import {
  MAX_REPORT_DAYS,
  PROFILE_IDS,
  REPORT_CSV_COLUMNS,
  REPORT_METRICS,
  ReportQuery,
  ReportResponse,
} from './reports.ts'
import { CreateTokenBody } from './tokens.ts'
import { CreateUserBody, UpdateUserBody } from './users.ts'

/**
 * The OpenAPI 3.1 description of /api/v1, generated from the zod schemas the routes validate with
 * (z.toJSONSchema; OpenAPI 3.1 uses JSON Schema 2020-12), so the document cannot drift from the checks.
 */

/** A window of an hourly or daily series; a window without samples has n 0, expected 0 and null numbers. */
const AggregatePoint = z.object({
  t: z.iso.datetime(),
  /** Null without samples, and for a day without a valid hour. */
  mean: z.number().nullable(),
  min: z.number().nullable(),
  max: z.number().nullable(),
  n: z.number().int(),
  /** Samples the window should have had (a day: 24 × the hourly expectation); n / expected is the sample coverage. */
  expected: z.number().min(0),
  coverage: z.number().min(0).max(1),
  valid: z.boolean(),
})
const RawPoint = z.object({ t: z.iso.datetime(), value: z.number(), device: z.string() })
export const SeriesResponse = z.object({
  site: z.string(),
  metric: z.enum(METRICS),
  unit: z.string(),
  every: z.enum(['raw', '1h', '1d']),
  from: z.iso.datetime(),
  to: z.iso.datetime(),
  device: z.string().optional(),
  points: z.array(z.union([RawPoint, AggregatePoint])),
})

const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  instance: z.string(),
  code: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
})

interface Operation {
  readonly method: 'get' | 'post' | 'put' | 'patch' | 'delete'
  readonly path: string
  readonly summary: string
  /** Longer text (CommonMark) where the summary cannot say everything a client must know. */
  readonly description?: string
  readonly tag: string
  /** Permission needed (core access.ts), 'public' when none, 'session' for the auth endpoints. */
  readonly access: Permission | 'public' | 'session'
  readonly query?: z.ZodObject
  readonly body?: z.ZodType
  readonly response?: z.ZodType
  readonly responseType?: string
  readonly status?: number
}

const SITE_ID = { name: 'id', in: 'path', required: true, schema: { type: 'string' } }
/** A measure taken at a site (sm-<n>). */
const MEASURE_ID = { name: 'measureId', in: 'path', required: true, schema: { type: 'string' } }

const OPERATIONS: readonly Operation[] = [
  {
    method: 'get',
    path: '/sites',
    tag: 'sites',
    access: 'map:read',
    summary: 'Every visible site with latest values, index band, device health and open breaches (GeoJSON)',
    response: SiteFeatureCollection,
    responseType: 'application/geo+json',
  },
  {
    method: 'get',
    path: '/sites/{id}',
    tag: 'sites',
    access: 'map:read',
    summary: 'One site; with devices:read also each device and its health',
    response: SiteFeature,
    responseType: 'application/geo+json',
  },
  {
    method: 'get',
    path: '/sites/{id}/series',
    tag: 'sites',
    access: 'series:hourly',
    summary: `Series of one metric: raw (needs series:raw), hourly or daily with n, coverage and validity. At most ${MAX_SERIES_POINTS} points and ${MAX_SERIES_SPAN.raw.label} raw / ${MAX_SERIES_SPAN['1h'].label} hourly / ${MAX_SERIES_SPAN['1d'].label} daily per request; larger requests get 400 series_too_large or span_too_long`,
    description: [
      '`every=1h` and `every=1d` return every window of the range in time order, also those without samples: UTC hours from the hour containing `from` while the hour starts before `to`; calendar days in fixed UTC+1 (Swedish normal time all year, no daylight saving: a day runs from 23:00 UTC the evening before, 24 h also on clock-change days) from the day containing `from` while the day starts before `to`.',
      'A window without samples is `{"t": …, "mean": null, "min": null, "max": null, "n": 0, "expected": 0, "coverage": 0, "valid": false}`; a chart draws it as a gap. `t` is the window start (UTC). `every=raw` returns only the readings there are.',
    ].join('\n\n'),
    query: SeriesQueryParams,
    response: SeriesResponse,
  },
  {
    method: 'get',
    path: '/sites/{id}/exceedances',
    tag: 'sites',
    access: 'series:hourly',
    summary:
      "Exceedances per calendar year of each threshold profile's rules against the number allowed, with data coverage beside each count",
    description: [
      `\`year\` from ${FIRST_EXCEEDANCE_YEAR} to the current year; every profile in force on some day of that year, or only \`profile\` (400 \`profile_not_in_force\` when it applies on no day of the year). A profile that takes effect or ends within the year is counted over the days it applies. Years are calendar years in fixed UTC+1 (Swedish normal time, no DST), as the daily means: \`from\`/\`to\` give the instants.`,
      'Counted: every valid period whose mean is strictly above `value` (hourly means with ≥ 75 % of their samples; daily means with ≥ 18 such hours). Hours with a quality issue (stuck, out of range, PM at relative humidity above 90 %, a finer PM fraction above a coarser one) are left out, as they are from breach alerts. `exceeded`: `count` above `allowed_per_year` (above zero when `allowed_per_year` is null).',
      '`year` rules: one period, the annual mean (`annual_mean`, µg/m³) of the counted hourly means; `count` is 1 when it is above `value`, and `valid_periods`/`expected_periods` are the counted and expected HOURS behind the mean.',
      '`coverage` = valid_periods / expected_periods. Expected periods are those of the whole year, also for the current year, where the coverage therefore says how much of the year is in. `sufficient_coverage` is false below 85 % (2024/2881): the count or mean is then indicative only; counts can only rise as gaps are filled, annual means can move either way. The 2024/2881 requirement that data be spread over quarters, months and weekdays is not checked.',
      'Rules on running 24-hour means are left out: those means are for display only, never counted. Low-cost sensor data are indicative measurements: these are screening results, not a legal compliance assessment.',
    ].join('\n\n'),
    query: ExceedancesQuery,
    response: ExceedancesResponse,
  },
  {
    method: 'get',
    path: '/sites/{id}/report',
    tag: 'sites',
    access: 'series:hourly',
    summary: `One site's report for a period of whole days (at most ${MAX_REPORT_DAYS}): mean levels, exceedances per rule with the allowed number, worst hours and days, coverage beside every number, profiles by hour of day, day of week and season, and suggested measures with their evidence`,
    description: [
      `\`from\` and \`to\` are calendar days (YYYY-MM-DD), both included, in fixed UTC+1 (Swedish normal time, no DST): the period runs from 00:00 UTC+1 of \`from\` to 00:00 UTC+1 after \`to\` (the response's \`from\`/\`to\` give the instants). \`to\` before \`from\` or more than ${MAX_REPORT_DAYS} days: 400 \`invalid_request\`. Metrics: ${REPORT_METRICS.join(', ')}.`,
      '`report`: as `GET /sites/{id}/exceedances` counts (valid hourly means ≥ 75 % of their samples, no quality issue; valid days ≥ 18 such hours; exceedance = strictly above `value`; running 24-h rules left out), over any period. Allowed numbers are per calendar year and are never scaled: for another period `allowedForYearOnly` is true, and annual values are compared for orientation only. Coverage below 85 % marks a number as indicative.',
      '`profiles`: per metric, means by LOCAL hour of day (0–23), day of week (0 = Monday) and meteorological season (winter, spring, summer, autumn) in Europe/Stockholm, each bucket with its counted hours, period hours and coverage.',
      `\`profiles\`: comma-separated threshold profile ids (${PROFILE_IDS.join(', ')}); default all; an unknown id: 400 naming it. The ids used are echoed in \`threshold_profiles\`.`,
      "`suggestions`: measures of the catalogue suggested by the patterns found in this site's data (drop-off peak, spring road dust, winter evening peak; local increment over the urban background; indoor/outdoor), each a suggestion with its evidence, never a conclusion; `evaluated` says per metric whether a pattern was found, not found, or had no data for it in the period; `skipped` lists patterns found on too little data; `not_evaluated` lists the patterns that could not be evaluated for this site and why (no urban background site within the stated distance; no indoor and outdoor device in the period).",
      '`background`: the nearest site of kind `background` (urban background station) within `max_distance_km` (great-circle), that the caller may read, compared hour by hour over the hours both have (a = this site, b = background; `meanDifference` = local increment); null when none. `indoor_outdoor`: when the site had indoor and outdoor devices in the period, indoor (a) against outdoor (b) hour by hour; the means, rules, profiles and patterns of the report then use the OUTDOOR devices only (`report_series`: limit values are for outdoor air). Null otherwise. `indoor_only`: every registered device at the site stood indoors, so the numbers are of indoor air.',
      `\`format=csv\`: \`text/csv; charset=utf-8\`, RFC 4180 with CRLF and a header row, columns ${REPORT_CSV_COLUMNS.join(', ')}. One \`metric\` row per metric (mean of the counted hourly means; counted/expected hours) and one \`rule\` row per profile rule (hour/day rules: \`count\` of periods above \`value\` and \`allowed_per_year\`, counted/expected periods; year rules: the period \`mean\`, counted/expected hours). Then, per metric of each hour-by-hour comparison in the JSON, a \`background\` row (\`rule\` = the background site's id, \`mean\` = this site and \`value\` = the background over the paired hours) and an \`indoor_outdoor\` row (\`rule\` = indoor, \`mean\` = indoor, \`value\` = outdoor); \`counted\` = paired hours, \`expected\` = hours of the period. Empty cell: no value. Numbers as in the JSON.`,
    ].join('\n\n'),
    query: ReportQuery,
    response: ReportResponse,
  },
  {
    method: 'get',
    path: '/reports/municipality',
    tag: 'sites',
    access: 'series:hourly',
    summary: `The municipality's report for a period of whole days (at most ${MAX_REPORT_DAYS}): per metric the median of the sites' period means, each site against it and against its kind, sites left out and why, urban background sites as reference, and a ranking of the sites that need attention with its formula`,
    description: [
      'Needs `series:hourly` on every site (admin, staff; everyone with the public map on). A role bound to its own sites (principal) gets 403: the report compares all sites.',
      "`from`, `to`, `profiles` and `format` as `GET /sites/{id}/report`; every site's numbers are those of its own site report for the same period and profiles (sites with indoor and outdoor devices: outdoor devices only, listed in `outdoor_only_sites`).",
      "`report.metrics[]`: a site counts when its period mean rests on ≥ 85 % of the hours; the median is over the counting sites (even count: mean of the two middle ones); `leftOut` gives the others with the reason (insufficient-coverage, no-data, not-reported). Urban background sites (kind `background`) are in no median and not ranked; `background` lists their levels for reference. `report.ranking`: score = the highest ratio of a site's period mean to the strictest annual value of the selected profiles, over pollutants with ≥ 85 % coverage; `formula` states it in Swedish and English with the values used.",
      `\`format=csv\`: \`text/csv; charset=utf-8\`, RFC 4180 with CRLF and a header row, columns ${MUNICIPAL_CSV_COLUMNS.join(', ')}; row kinds median, kind_median, site, left_out, background (per metric), then rank and not_ranked. Empty cell: no value.`,
    ].join('\n\n'),
    query: MunicipalReportQuery,
    response: MunicipalReportResponse,
  },
  {
    method: 'get',
    path: '/measures',
    tag: 'measures',
    access: 'series:hourly',
    summary:
      'The catalogue of measures the reports suggest from (issue 7), with its revision (also as ETag); `source` default = never edited',
    response: MeasureCatalogueResponse,
  },
  {
    method: 'put',
    path: '/measures',
    tag: 'measures',
    access: 'measures:write',
    summary: 'Replace the catalogue of measures; needs If-Match with the revision edited; audited',
    description: [
      'Body: the whole catalogue, an array of measures (unique ids; name and description in sv and en; the patterns that suggest each, with evidence templates whose `{placeholders}` must be values of that pattern; sources with their reliability). Texts that state a conclusion ("proves", "caused", "bevisar", "orsakar", …) are refused: 400 with the zod path and message of each problem.',
      'Optimistic concurrency: send `If-Match: "<revision>"` with the ETag of the catalogue you edited. Without it: 428 `precondition_required`; when someone saved in between: 412 `revision_mismatch` (the current ETag in the answer). On success the new catalogue with revision + 1 and its ETag.',
    ].join('\n\n'),
    body: MeasureCatalogueBody,
    response: MeasureCatalogueResponse,
  },
  {
    method: 'get',
    path: '/sites/{id}/measures',
    tag: 'measures',
    access: 'series:hourly',
    summary: 'Measures taken at the site, by date (`recorded_by` only for callers who may change measures)',
    response: SiteMeasureListResponse,
  },
  {
    method: 'post',
    path: '/sites/{id}/measures',
    tag: 'measures',
    access: 'measures:write',
    summary:
      'Record a measure taken at the site on `takenOn` (not in the future); `measureId` must be in the catalogue (400 `unknown_measure`), `title` defaults to its Swedish name; audited',
    body: SiteMeasureBody,
    response: SiteMeasureResponse,
    status: 201,
  },
  {
    method: 'delete',
    path: '/sites/{id}/measures/{measureId}',
    tag: 'measures',
    access: 'measures:write',
    summary: 'Delete a measure taken (a mistaken record); audited',
    status: 204,
  },
  {
    method: 'get',
    path: '/sites/{id}/measures/{measureId}/follow-up',
    tag: 'measures',
    access: 'series:hourly',
    summary:
      'Before and after a measure taken: per pollutant the means of the N days before and the N days from `taken_on`, their coverage and the change, beside the nearest urban background site over the same windows, the weather of both windows, and the caveats',
    description: [
      '`days`: window length in whole UTC+1 days, 7–182, default 28. Hours count as in every report (valid, no quality issue, final). A change is stated only once the after window is over (`after_complete`). `metrics`: the pollutants (pm1, pm25, pm10, no2) some device at the site measured in the windows.',
      '`difference_in_differences` = site change − background change: the part of the change the background did not show. It is a comparison, not a measured result of the measure: `caveats` (codes SEASON_DIFFERS, WEATHER_DIFFERS, WEATHER_UNKNOWN, LOW_COVERAGE, AFTER_INCOMPLETE, NO_BACKGROUND, SCHOOL_HOLIDAYS; text in sv and en) say what else differs between the windows. SCHOOL_HOLIDAYS is in every answer.',
    ].join('\n\n'),
    query: FollowUpQuery,
    response: FollowUpResponse,
  },
  {
    method: 'get',
    path: '/replay',
    tag: 'sites',
    access: 'series:hourly',
    summary: 'Hourly means of one index pollutant for every visible site, last 24 h or 7 days',
    query: ReplayQuery,
  },
  {
    method: 'get',
    path: '/export',
    tag: 'export',
    access: 'export',
    summary: `Bulk export (schemas ${exportSchemaId(1)} and ${exportSchemaId(2)}) of raw readings or hourly/daily aggregates as CSV, NDJSON or Parquet, streamed`,
    description: [
      `Columns, types and units: docs/export.md (data dictionary). Long format: one row per value; the column order never changes within a schema version (\`schema\`, default ${LATEST_EXPORT_SCHEMA}; sent as the header \`X-Skolluft-Export-Schema\`). Schema 2 adds quality flags per reading (docs/quality-flags.md) and, with \`values=corrected\`, corrected values naming their correction (docs/corrections.md). CSV is RFC 4180, UTF-8 without BOM, CRLF, with a header row (\`${EXPORT_CONTENT_TYPES.csv}\`); NDJSON has one object per line with the same keys (\`${EXPORT_CONTENT_TYPES.ndjson}\`); Parquet has typed columns (\`${EXPORT_CONTENT_TYPES.parquet}\`). Times are ISO 8601 UTC.`,
      "Rows come in a fixed order (raw: site, device, time, metric; hourly/daily: site, time, metric), so repeating a request over the same data returns identical bytes. To resume a CSV or NDJSON download, repeat the request with `after` = the first cells of the last complete row you have (raw: time,site_id,device_id,metric; hourly/daily: time,site_id,metric): the rest comes without a header. Any format also resumes with `Range: bytes=<n>-` (206 with Content-Range and a SHA-256 ETag; If-Range honoured). Gzip (level 1) with `Accept-Encoding: gzip`. `GET /export/manifest` with the same query answers the file's manifest (rows, bytes, SHA-256, corrections, licence).",
      `Access: holders of \`export\` (admin, staff, researcher tokens) get every resolution with no limit on the window and no paging. Others get hourly and daily data of the sites they may read series of (with the public map on: every site), at most ${MAX_PUBLIC_EXPORT_SPAN.hourly.label} hourly / ${MAX_PUBLIC_EXPORT_SPAN.daily.label} daily per request (400 \`span_too_long\`); raw readings need \`export\`. Quota: ${EXPORT_QUOTA.perCaller} exports at once per caller, ${EXPORT_QUOTA.total} in all (429 \`export_quota\` with Retry-After).`,
      `\`from\` and \`to\` are required ([from, to)). \`sites\` and \`devices\` are comma-separated ids (at most ${MAX_EXPORT_IDS}; unknown site: 404); \`bbox\` = minLon,minLat,maxLon,maxLat selects sites by their coordinates; \`metrics\` defaults to all of ${METRICS.join(', ')}. Hourly: hours overlapping [from, to); daily: fixed UTC+1 days from the one containing \`from\`.`,
    ].join('\n\n'),
    query: ExportQueryParams,
    responseType: EXPORT_CONTENT_TYPES.csv,
  },
  {
    method: 'get',
    path: '/export/manifest',
    tag: 'export',
    access: 'export',
    summary:
      'The manifest of the export the same query returns: schema, columns, query, rows, bytes and SHA-256 of the (uncompressed) file, software version, corrections, threshold profiles, licence and attribution',
    query: ExportQueryParams,
    response: Manifest,
  },
  {
    method: 'get',
    path: '/calibrations',
    tag: 'calibrations',
    access: 'export',
    summary: 'Per-device linear calibrations, every version, ordered by device, metric, version (docs/corrections.md)',
    query: CalibrationsQuery,
    response: CalibrationListResponse,
  },
  {
    method: 'get',
    path: '/calibrations/{id}',
    tag: 'calibrations',
    access: 'export',
    summary: 'One calibration (id cal-<n>)',
    response: CalibrationResponse,
  },
  {
    method: 'post',
    path: '/calibrations',
    tag: 'calibrations',
    access: 'calibrations:write',
    summary:
      'Create the next calibration version of a device and metric: entered by hand or fitted by colocation; audited',
    description: [
      'Corrected = slope · input + intercept, for readings from `validFrom` on, until a newer version or retirement. Stored values never change; exports with corrected values name the calibration as `cal-<n>@<version>` (docs/corrections.md).',
      "Input: when the device's metric has a humidity correction (optical PM with an RH sensor: `rh-hackair` or, for Plantower-class models, `rh-epa-2021`), the line is applied to the humidity-corrected value, and a colocation fit is made on humidity-corrected hourly means; `applied_after` in the response says which.",
      `\`kind: "colocation"\`: ordinary least squares of the reference device's valid hourly means (≥ 75 % coverage) on the device's over the hours [from, to) (whole hours, at most ${MAX_FIT_SPAN_MS / 86_400_000} days); 422 \`too_few_pairs\` below 24 paired hours, \`degenerate_fit\` when either does not vary, \`slope_out_of_range\`. The response carries n, r², RMSE, the reference and the period.`,
    ].join('\n\n'),
    body: CalibrationBody,
    response: CalibrationResponse,
    status: 201,
  },
  {
    method: 'post',
    path: '/calibrations/{id}/retire',
    tag: 'calibrations',
    access: 'calibrations:write',
    summary: 'End a calibration at `at` (default now): later readings no longer get it; once only (409); audited',
    body: RetireBody,
    response: CalibrationResponse,
  },
  {
    method: 'get',
    path: '/breaches',
    tag: 'breaches',
    access: 'map:read',
    summary: `Threshold breach incidents of the visible sites, newest start first (at most ${MAX_BREACHES_LIMIT}); withdrawn ones are left out`,
    query: BreachesQuery,
    response: BreachListResponse,
  },
  {
    method: 'get',
    path: '/breaches/{id}',
    tag: 'breaches',
    access: 'map:read',
    summary:
      'One incident with its comments (comments and who acknowledged only for logged-in callers); 404 when not visible',
    response: BreachDetailResponse,
  },
  {
    method: 'post',
    path: '/breaches/{id}/acknowledge',
    tag: 'breaches',
    access: 'breaches:manage',
    summary: 'Acknowledge an incident (a second acknowledgement keeps the first); audited',
    response: BreachResponse,
  },
  {
    method: 'post',
    path: '/breaches/{id}/comments',
    tag: 'breaches',
    access: 'breaches:manage',
    summary: 'Comment on an incident; audited (without the text)',
    body: CommentBody,
    response: BreachComment,
    status: 201,
  },
  {
    method: 'get',
    path: '/subscriptions',
    tag: 'alerts',
    access: 'alerts:subscribe',
    summary: "The caller's active alert subscriptions (user sessions only)",
    response: SubscriptionListResponse,
  },
  {
    method: 'post',
    path: '/subscriptions',
    tag: 'alerts',
    access: 'alerts:subscribe',
    summary: 'Subscribe to alerts by e-mail, webhook or in-app notification (user sessions only); audited',
    description: [
      'Principals subscribe to breaches of their own sites (`sites: "all"` is stored as their bound sites), caretakers to device health, staff and admins to both.',
      'Refused with 400: an unknown site (each named), an e-mail address that cannot be valid, a webhook URL that is not https in production (plain http only to localhost outside production), overlapping quiet hours, unknown fields.',
      "Refused with 403: a topic the role may not use (`topic_not_allowed`), another school's site (`site_not_allowed`), an API token (`user_session_required`: a token has no user to alert).",
      `409 \`too_many_subscriptions\` past ${MAX_SUBSCRIPTIONS_PER_USER} active subscriptions; 503 \`alerts_not_configured\` when the API runs without the alerts key.`,
      '**For a webhook, `signing_secret` is in this response only and is never shown again**: every delivery carries `X-Skolluft-Signature: v1=<hex HMAC-SHA256(signing_secret, "<X-Skolluft-Timestamp>.<body>")>`. To get a new secret, delete the subscription and create another.',
    ].join('\n\n'),
    body: SubscriptionBody,
    response: CreatedSubscriptionResponse,
    status: 201,
  },
  {
    method: 'delete',
    path: '/subscriptions/{id}',
    tag: 'alerts',
    access: 'alerts:subscribe',
    summary: "Unsubscribe; the caller's own subscriptions only (404 otherwise); audited",
    status: 204,
  },
  {
    method: 'get',
    path: '/notifications',
    tag: 'alerts',
    access: 'alerts:subscribe',
    summary: "The caller's in-app notifications, newest first, and how many are unread (user sessions only)",
    query: NotificationsQuery,
    response: NotificationListResponse,
  },
  {
    method: 'post',
    path: '/notifications/read',
    tag: 'alerts',
    access: 'alerts:subscribe',
    summary: "Mark the caller's notifications read; ids of other users' notifications change nothing",
    body: MarkReadBody,
    response: MarkReadResponse,
  },
  {
    method: 'get',
    path: '/deliveries',
    tag: 'alerts',
    access: 'deliveries:read',
    summary: `The alert outbox, newest first (at most ${MAX_DELIVERIES_LIMIT}): status, attempts and last error of every message; webhook URLs shown as their origin only`,
    query: DeliveriesQuery,
    response: DeliveryListResponse,
  },
  {
    method: 'get',
    path: '/deliveries/{id}/attempts',
    tag: 'alerts',
    access: 'deliveries:read',
    summary: 'One outbox message and each delivery attempt (time, outcome, error, duration)',
    response: DeliveryAttemptsResponse,
  },
  {
    method: 'get',
    path: '/unsubscribe/{id}',
    tag: 'alerts',
    access: 'public',
    summary: 'The unsubscribe link of an alert: an HTML page (Swedish and English) whose button posts to the same URL',
    description:
      'The `token` in the link is the credential; no log-in. A wrong token and an unknown id answer the same 404 (an HTML page for browsers).',
    query: UnsubscribeQuery,
    responseType: 'text/html',
  },
  {
    method: 'post',
    path: '/unsubscribe/{id}',
    tag: 'alerts',
    access: 'public',
    summary:
      "Unsubscribe by link: the page's button, or a mail client's RFC 8058 one-click POST (List-Unsubscribe=One-Click)",
    description:
      'No session or CSRF token: the `token` query parameter is the credential (compared in constant time). Answers an HTML confirmation; a second POST changes nothing.',
    query: UnsubscribeQuery,
    responseType: 'text/html',
  },
  {
    method: 'get',
    path: '/guidelines',
    tag: 'reference',
    access: 'public',
    summary: 'European index bands and guideline lines (WHO 2021, EU)',
  },
  {
    method: 'get',
    path: '/config',
    tag: 'reference',
    access: 'public',
    summary: 'Public runtime configuration of the dashboard',
  },
  {
    method: 'post',
    path: '/auth/login',
    tag: 'auth',
    access: 'session',
    summary: 'Log in; sets the session cookie and returns the CSRF token',
    body: LoginBody,
    response: SessionResponse,
  },
  {
    method: 'post',
    path: '/auth/logout',
    tag: 'auth',
    access: 'session',
    summary: 'Log out (X-CSRF-Token)',
    status: 204,
  },
  {
    method: 'get',
    path: '/auth/session',
    tag: 'auth',
    access: 'session',
    summary: 'Who is logged in, the CSRF token, whether the map is public',
    response: SessionResponse,
  },
  {
    method: 'post',
    path: '/auth/setup',
    tag: 'auth',
    access: 'session',
    summary: 'Create the first admin with the one-time value printed at first start',
    body: SetupBody,
  },
  { method: 'get', path: '/me', tag: 'auth', access: 'map:read', summary: 'The calling user or token' },
  { method: 'get', path: '/users', tag: 'admin', access: 'users:manage', summary: 'All users' },
  {
    method: 'post',
    path: '/users',
    tag: 'admin',
    access: 'users:manage',
    summary: 'Create a user (password generated and returned once if none is given)',
    body: CreateUserBody,
    status: 201,
  },
  {
    method: 'patch',
    path: '/users/{id}',
    tag: 'admin',
    access: 'users:manage',
    summary: 'Change role, sites, name, password or disable',
    body: UpdateUserBody,
  },
  {
    method: 'delete',
    path: '/users/{id}',
    tag: 'admin',
    access: 'users:manage',
    summary: 'Disable a user and end their sessions',
    status: 204,
  },
  { method: 'get', path: '/tokens', tag: 'admin', access: 'tokens:manage', summary: 'All API tokens (no secrets)' },
  {
    method: 'post',
    path: '/tokens',
    tag: 'admin',
    access: 'tokens:manage',
    summary: 'Create an API token; the value is returned once',
    body: CreateTokenBody,
    status: 201,
  },
  {
    method: 'delete',
    path: '/tokens/{id}',
    tag: 'admin',
    access: 'tokens:manage',
    summary: 'Revoke a token',
    status: 204,
  },
  {
    method: 'get',
    path: '/audit',
    tag: 'admin',
    access: 'audit:read',
    summary: 'Audit log of admin actions, newest first',
    query: AuditQuery,
  },
  {
    method: 'get',
    path: '/rejects',
    tag: 'operations',
    access: 'rejects:read',
    summary: 'Rejected telemetry, newest first',
    query: RejectsQuery,
  },
  {
    method: 'get',
    path: '/rejects/counts',
    tag: 'operations',
    access: 'rejects:read',
    summary: 'Rejections per device and code',
  },
  {
    method: 'get',
    path: '/internal/registry',
    tag: 'services',
    access: 'registry:read',
    summary:
      'For an ingest on another machine: every device with its model, sensors, interval, revocation and placements (never a secret), unless the registry is still at revision `since`',
    description: [
      'Tokens of role `service` only (`skolluft token create --role service`); no other role holds `registry:read`, admin neither. Times are epoch milliseconds, as in storage.',
      'Poll with `since` = the revision of the last answer: while nothing changed the answer is `{"revision":n,"changed":false}`. The revision is read before the devices, so the devices are at least that new.',
      `Limits: ${SERVICE_RATE_PER_S} requests per second per service token (burst ${SERVICE_BURST}) instead of the per-address limit; an invalid token counts as a failed log-in of the address.`,
    ].join('\n\n'),
    query: RegistryQuery,
    response: RegistrySnapshot,
  },
  {
    method: 'post',
    path: '/internal/rejects',
    tag: 'services',
    access: 'rejects:write',
    summary: `For an ingest on another machine: append up to ${MAX_REJECTS_PER_REQUEST} rejected telemetry entries to the reject log; 204 once committed`,
    description:
      'Tokens of role `service` only. Entries with `redelivery` true are skipped when their `messageKey` is in the log already (the broker or the client sent them again). Same limits as GET /internal/registry; body at most 1 MiB.',
    body: RejectsBody,
    status: 204,
  },
]

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' })
  return rest
}

function queryParameters(query: z.ZodObject): unknown[] {
  return Object.entries(query.shape).map(([name, field]) => ({
    name,
    in: 'query',
    required: !field.safeParse(undefined).success,
    schema: schemaOf(field, 'input'),
  }))
}

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const op of OPERATIONS) {
    const parameters = [
      ...(op.path.includes('{id}') ? [SITE_ID] : []),
      ...(op.path.includes('{measureId}') ? [MEASURE_ID] : []),
      ...(op.query ? queryParameters(op.query) : []),
    ]
    const ok = String(op.status ?? 200)
    const entry = {
      summary: op.summary,
      ...(op.description === undefined ? {} : { description: op.description }),
      tags: [op.tag],
      'x-permission': op.access,
      ...(op.access === 'public' || op.access === 'session' ? { security: [] } : {}),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(op.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(op.body, 'input') } } } }
        : {}),
      responses: {
        [ok]: {
          description: 'OK',
          ...(op.response
            ? { content: { [op.responseType ?? 'application/json']: { schema: schemaOf(op.response, 'output') } } }
            : {}),
        },
        default: {
          description: 'Error (RFC 9457 problem details)',
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        },
      },
    }
    paths[op.path] = { ...paths[op.path], [op.method]: entry }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'skolluft API',
      version: '1',
      description:
        "Air quality around schools and preschools. Permissions (x-permission) come from roles: admin, staff, principal (own sites), caretaker, researcher, and service (tokens of the platform's own services on other machines); with the public map switched on, map:read and series:hourly need no log-in.",
      license: { name: 'EUPL-1.2', identifier: 'EUPL-1.2' },
    },
    servers: [{ url: '/api/v1' }],
    components: {
      schemas: { Problem: schemaOf(Problem, 'output') },
      securitySchemes: {
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'skolluft_session',
          description: 'State changes also need the X-CSRF-Token header',
        },
        token: {
          type: 'http',
          scheme: 'bearer',
          description: 'API token skl_…, from an admin (POST /tokens or `skolluft token create`)',
        },
      },
    },
    security: [{ session: [] }, { token: [] }],
    paths,
  }
}

export function openApiRouter(): Router {
  const router = Router()
  const document = JSON.stringify(openApiDocument())
  router
    .route('/openapi.json')
    .get((_req, res) => {
      res.set('Cache-Control', 'public, max-age=3600')
      res.type('application/json').send(document)
    })
    .all(methodNotAllowed(['GET', 'HEAD']))
  return router
}
