/**
 * Device health as the map and the caretaker see it. A device is offline when it has missed
 * OFFLINE_AFTER_INTERVALS readings in a row (and at least OFFLINE_MIN_MS has passed, so a 10-second
 * device is not "offline" after one slow publish); suspect when it reports but less than
 * SUSPECT_BELOW_COVERAGE of the expected readings arrived over the last day, the validity rule for a
 * daily mean (air-quality reference §3: ≥ 75 % of hours).
 */
export const OFFLINE_AFTER_INTERVALS = 3
export const OFFLINE_MIN_MS = 10 * 60_000
export const SUSPECT_BELOW_COVERAGE = 0.75
/** Coverage is judged over this window. */
export const HEALTH_WINDOW_MS = 24 * 3_600_000

export const DEVICE_HEALTH = ['ok', 'suspect', 'offline', 'never'] as const
export type DeviceHealth = (typeof DEVICE_HEALTH)[number]

export interface DeviceHealthInput {
  /** Measurement time of the newest reading, epoch ms; null if the device never reported. */
  readonly lastTs: number | null
  readonly intervalS: number
  readonly now: number
  /** Share of expected readings over the health window (0…1); null when it cannot be judged yet. */
  readonly coverage: number | null
}

export function offlineAfterMs(intervalS: number): number {
  return Math.max(OFFLINE_AFTER_INTERVALS * intervalS * 1000, OFFLINE_MIN_MS)
}

export function deviceHealth(input: DeviceHealthInput): DeviceHealth {
  if (input.lastTs === null) return 'never'
  if (input.now - input.lastTs > offlineAfterMs(input.intervalS)) return 'offline'
  if (input.coverage !== null && input.coverage < SUSPECT_BELOW_COVERAGE) return 'suspect'
  return 'ok'
}

/**
 * Share of expected readings that arrived in [from, now): `samples` over what the interval promises for
 * the part of the window the device stood there (`since` = its placement start). Null for a window
 * shorter than one interval, where one missing reading would already read as 0 %.
 */
export function coverageOf(
  samples: number,
  intervalS: number,
  from: number,
  since: number,
  now: number,
): number | null {
  const start = Math.max(from, since)
  const expected = (now - start) / (intervalS * 1000)
  if (expected < 1) return null
  return Math.min(1, samples / expected)
}
