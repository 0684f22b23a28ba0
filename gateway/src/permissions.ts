import {
  deviceTopic,
  type EventKind,
  isValidId,
  parseDeviceTopic,
  parseEventTopic,
  TOPIC_KINDS,
  TOPIC_PREFIX,
  type TopicKind,
} from '@skolluft/core'
import type { ServiceAccount } from '@skolluft/storage'

/**
 * Who may do what on the broker. Pure functions over the v1 topic grammar (core topics.ts); the gateway
 * calls them from the aedes hooks. Everything not granted here is refused.
 *
 *   device {id}      publish   aq/v1/devices/{id}/telemetry, aq/v1/devices/{id}/status
 *                    subscribe aq/v1/devices/{id}/config
 *                    will      aq/v1/devices/{id}/status only
 *   service ingest   subscribe aq/v1/devices/{+|id}/telemetry, aq/v1/devices/{+|id}/status
 *                    publish   aq/v1/devices/{id}/config, aq/v1/events/readings-committed
 *   service alerts   subscribe aq/v1/events/readings-committed
 *   service api      subscribe aq/v1/devices/{+|id}/telemetry, aq/v1/devices/{+|id}/status (live updates)
 *   service admin    publish   aq/v1/devices/{id}/config
 *   service sim      nothing: the simulator logs in as each simulated device, like real hardware
 *   services         no will (no v1 topic belongs to a service)
 *
 * Never: wildcards in a publish topic [MQTT-3.3.2-2], `#` in any filter, `$`-topics ($SYS, $share) for
 * anyone, topics outside the grammar.
 */
export type ServiceRole = ServiceAccount['role']

export type Principal =
  | { readonly kind: 'device'; readonly id: string }
  | { readonly kind: 'service'; readonly username: string; readonly role: ServiceRole }

interface Grants {
  readonly publish: readonly TopicKind[]
  readonly subscribe: readonly TopicKind[]
  /** Platform event topics (core EVENT_KINDS); exact topics only, no wildcards. */
  readonly publishEvents: readonly EventKind[]
  readonly subscribeEvents: readonly EventKind[]
}

const NO_EVENTS = { publishEvents: [], subscribeEvents: [] } as const

const ROLE_GRANTS: Readonly<Record<ServiceRole, Grants>> = {
  ingest: {
    publish: ['config'],
    subscribe: ['telemetry', 'status'],
    publishEvents: ['readings-committed'],
    subscribeEvents: [],
  },
  api: { publish: [], subscribe: ['telemetry', 'status'], ...NO_EVENTS },
  alerts: { publish: [], subscribe: [], publishEvents: [], subscribeEvents: ['readings-committed'] },
  admin: { publish: ['config'], subscribe: [], ...NO_EVENTS },
  sim: { publish: [], subscribe: [], ...NO_EVENTS },
}

/** A device acts on its own topics only. */
const DEVICE_GRANTS: Grants = { publish: ['telemetry', 'status'], subscribe: ['config'], ...NO_EVENTS }

export const DENY_REASONS = [
  /** `$SYS/…`, `$share/…` and every other `$` topic are the broker's. */
  'reserved_topic',
  /** `+` or `#` in a PUBLISH topic (or will topic). */
  'wildcard_in_topic',
  /** More levels than the limit; counted separately from other denials. */
  'topic_too_deep',
  /** `#` anywhere in a filter: nobody may subscribe to a whole subtree. */
  'multi_level_wildcard',
  /** Neither `aq/v1/devices/{id}/{telemetry|status|config}` nor a platform event topic (`aq/v1/events/{kind}`). */
  'not_a_device_topic',
  /** A device acting on another device's topic, or a device using `+`. */
  'other_device',
  /** The topic kind is not granted to this principal for this action (e.g. a device publishing config). */
  'not_permitted',
  /** A will on anything but the device's own status topic, or any will from a service. */
  'will_not_permitted',
] as const
export type DenyReason = (typeof DENY_REASONS)[number]

function grantsOf(principal: Principal): Grants {
  return principal.kind === 'device' ? DEVICE_GRANTS : ROLE_GRANTS[principal.role]
}

function levels(topic: string): number {
  return topic.split('/').length
}

function isTopicKind(value: string | undefined): value is TopicKind {
  return value !== undefined && (TOPIC_KINDS as readonly string[]).includes(value)
}

/** Parses a subscription filter of the grammar; the device level may be `+`. */
function parseDeviceFilter(filter: string): { deviceId: string | '+'; kind: TopicKind } | null {
  const parts = filter.split('/')
  if (parts.length !== TOPIC_PREFIX.split('/').length + 2) return null
  const [a, v, d, deviceId, kind] = parts
  if (`${a}/${v}/${d}` !== TOPIC_PREFIX) return null
  if (deviceId === undefined || (deviceId !== '+' && !isValidId(deviceId))) return null
  if (!isTopicKind(kind)) return null
  return { deviceId, kind }
}

/** Why `principal` may not publish to `topic`, or null if it may. Payload size and rate are checked elsewhere. */
export function checkPublish(principal: Principal, topic: string, maxTopicLevels: number): DenyReason | null {
  if (topic.startsWith('$')) return 'reserved_topic'
  // aedes refuses these before our hook runs [MQTT-3.3.2-2]; checked again so the rule holds on its own.
  if (topic.includes('+') || topic.includes('#')) return 'wildcard_in_topic'
  if (levels(topic) > maxTopicLevels) return 'topic_too_deep'
  const event = parseEventTopic(topic)
  if (event !== null) return grantsOf(principal).publishEvents.includes(event) ? null : 'not_permitted'
  const parsed = parseDeviceTopic(topic)
  if (parsed === null) return 'not_a_device_topic'
  if (principal.kind === 'device' && parsed.deviceId !== principal.id) return 'other_device'
  return grantsOf(principal).publish.includes(parsed.kind) ? null : 'not_permitted'
}

/** Why `principal` may not subscribe to `filter`, or null if it may. */
export function checkSubscribe(principal: Principal, filter: string, maxTopicLevels: number): DenyReason | null {
  if (filter.startsWith('$')) return 'reserved_topic'
  if (levels(filter) > maxTopicLevels) return 'topic_too_deep'
  if (filter.includes('#')) return 'multi_level_wildcard'
  const event = parseEventTopic(filter)
  if (event !== null) return grantsOf(principal).subscribeEvents.includes(event) ? null : 'not_permitted'
  const parsed = parseDeviceFilter(filter)
  if (parsed === null) return 'not_a_device_topic'
  if (principal.kind === 'device' && parsed.deviceId !== principal.id) return 'other_device'
  return grantsOf(principal).subscribe.includes(parsed.kind) ? null : 'not_permitted'
}

/**
 * Whether a message on `topic` may be delivered to `principal`. Subscriptions are already checked; this
 * is the second lock for messages that reach a client some other way (a persistent session inherited
 * through a client id, the offline queue, retained messages).
 */
export function mayReceive(principal: Principal, topic: string): boolean {
  const event = parseEventTopic(topic)
  if (event !== null) return grantsOf(principal).subscribeEvents.includes(event)
  const parsed = parseDeviceTopic(topic)
  if (parsed === null) return false
  if (principal.kind === 'device' && parsed.deviceId !== principal.id) return false
  return grantsOf(principal).subscribe.includes(parsed.kind)
}

/** Why the last will in a CONNECT is refused, or null if it is acceptable. */
export function checkWill(principal: Principal, willTopic: string): DenyReason | null {
  if (principal.kind === 'service') return 'will_not_permitted'
  return willTopic === deviceTopic(principal.id, 'status') ? null : 'will_not_permitted'
}

/** For logs: the principal's name. */
export function principalName(principal: Principal): string {
  return principal.kind === 'device' ? principal.id : principal.username
}
