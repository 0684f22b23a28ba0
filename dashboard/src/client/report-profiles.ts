/**
 * The threshold profiles a report can evaluate (core thresholds.ts PROFILES: id and name, in that order), for the
 * report's rule picker. Copied, not imported: core's module builds zod schemas at load, and zod probes `new Function`
 * there, which the dashboard's CSP (no 'unsafe-eval') reports as a violation. report-profiles.test.ts keeps this list
 * equal to core's.
 */
export const REPORT_PROFILES: readonly { readonly id: string; readonly name: string }[] = [
  { id: 'who2021-aqg', name: 'WHO 2021 Air Quality Guidelines (AQG)' },
  { id: 'who2021-it1', name: 'WHO 2021 interim target 1' },
  { id: 'who2021-it2', name: 'WHO 2021 interim target 2' },
  { id: 'who2021-it3', name: 'WHO 2021 interim target 3' },
  { id: 'who2021-it4', name: 'WHO 2021 interim target 4' },
  { id: 'eu2008-50', name: 'EU Directive 2008/50/EC limit values' },
  { id: 'eu2024-2881', name: 'EU Directive 2024/2881 limit values (from 2030)' },
  { id: 'eu2024-2881-thresholds', name: 'EU Directive 2024/2881 information and alert thresholds' },
  { id: 'se-mkn', name: 'Miljökvalitetsnormer (SFS 2010:477)' },
  { id: 'se-frisk-luft', name: 'Miljömålet Frisk luft (preciseringar)' },
  { id: 'eea-index', name: 'European Air Quality Index (EEA, 2024 revision) bands' },
]

export function profileName(id: string): string {
  return REPORT_PROFILES.find((p) => p.id === id)?.name ?? id
}
