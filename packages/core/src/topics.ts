import { isValidId } from './ids.ts'

/**
 * Topic grammar of the device contract, v1. Built and parsed only here.
 *
 *   aq/v1/devices/{deviceId}/telemetry   device → platform, QoS 1, not retained
 *   aq/v1/devices/{deviceId}/status      device → platform, QoS 1, retained; the last will sets "offline"
 *   aq/v1/devices/{deviceId}/config      platform → device, QoS 1, retained
 *
 * Exactly five levels; `{deviceId}` matches `ID_PATTERN`. Anything else is not a skolluft topic.
 */
export const TOPIC_PREFIX = 'aq/v1/devices'
export const TOPIC_KINDS = ['telemetry', 'status', 'config'] as const
export type TopicKind = (typeof TOPIC_KINDS)[number]

/** Deepest topic any client may use (prefix has 3 levels, plus id and kind). */
export const MAX_TOPIC_LEVELS = 5

export interface DeviceTopic {
  readonly deviceId: string
  readonly kind: TopicKind
}

export function deviceTopic(deviceId: string, kind: TopicKind): string {
  if (!isValidId(deviceId)) throw new RangeError(`invalid device id for a topic: ${JSON.stringify(deviceId)}`)
  return `${TOPIC_PREFIX}/${deviceId}/${kind}`
}

export function parseDeviceTopic(topic: string): DeviceTopic | null {
  const parts = topic.split('/')
  if (parts.length !== MAX_TOPIC_LEVELS) return null
  const [a, v, d, deviceId, kind] = parts
  if (`${a}/${v}/${d}` !== TOPIC_PREFIX) return null
  if (deviceId === undefined || !isValidId(deviceId)) return null
  if (kind !== 'telemetry' && kind !== 'status' && kind !== 'config') return null
  return { deviceId, kind }
}

/** Subscription filters used by the platform's own services. */
export const ALL_TELEMETRY_FILTER = `${TOPIC_PREFIX}/+/telemetry`
export const ALL_STATUS_FILTER = `${TOPIC_PREFIX}/+/status`

export function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#')
}

/**
 * Platform events, service → service, v1 (not part of the device contract):
 *
 *   aq/v1/events/readings-committed   ingest → alerts, QoS 1, not retained: which site-hours a commit touched
 *
 * Four levels; devices may never publish or subscribe here (gateway permissions.ts).
 */
export const EVENT_PREFIX = 'aq/v1/events'
export const EVENT_KINDS = ['readings-committed'] as const
export type EventKind = (typeof EVENT_KINDS)[number]

export function eventTopic(kind: EventKind): string {
  return `${EVENT_PREFIX}/${kind}`
}

export function parseEventTopic(topic: string): EventKind | null {
  if (!topic.startsWith(`${EVENT_PREFIX}/`)) return null
  const kind = topic.slice(EVENT_PREFIX.length + 1)
  return EVENT_KINDS.find((k) => k === kind) ?? null
}
