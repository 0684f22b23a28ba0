import { Device, DeviceId, MAX_BATCH_READINGS, Placement, REJECT_CODES } from '@skolluft/core'
import { z } from 'zod'

/**
 * The HTTP contract between the API and a service on another machine (issue 6): an ingest that reads the device
 * registry and records rejects through the API instead of the SQLite file (REGISTRY_URL). The API validates with
 * these schemas and the client (http-registry.ts, http-rejects.ts) parses its answers with them, so the two
 * cannot drift. Times are epoch ms, as in the storage interface (the public API's ISO strings are for people).
 */
export const INTERNAL_REGISTRY_PATH = '/api/v1/internal/registry'
export const INTERNAL_REJECTS_PATH = '/api/v1/internal/rejects'

/** `GET …/registry?since=<revision>`: the whole registry, unless it is still at revision `since`. */
export const RegistryQuery = z.strictObject({
  since: z.coerce
    .number({ error: 'since must be a registry revision (a whole number)' })
    .int('since must be a whole number')
    .min(0, 'since must be at least 0')
    .optional(),
})

/**
 * A device as an ingest needs it: the core Device fields and the placement history. Never the secret hash: z.object
 * strips keys it does not name, so a DeviceRecord passed through `parse` loses `secretHash` even if a caller forgot.
 */
export const RegistryDevice = Device.extend({ placements: z.array(Placement) })
export type RegistryDevice = z.infer<typeof RegistryDevice>

const Revision = z.number().int().min(0)

/**
 * The answer: `changed: false` when the registry is still at `since` (a poll costs a few bytes), otherwise every
 * device. The revision is read before the devices, so the devices are at least as new as the revision says; a change
 * in between shows as a higher revision at the next poll, never as newer data hidden behind an old revision.
 */
export const RegistrySnapshot = z.discriminatedUnion('changed', [
  z.strictObject({ revision: Revision, changed: z.literal(false) }),
  z.strictObject({ revision: Revision, changed: z.literal(true), devices: z.array(RegistryDevice) }),
])
export type RegistrySnapshot = z.infer<typeof RegistrySnapshot>

/**
 * Rejects per request: one message's worth at most (a batch of MAX_BATCH_READINGS readings each rejected), so the
 * rejections of one message never need two requests (the redelivery check of RejectLog.record is per call).
 */
export const MAX_REJECTS_PER_REQUEST = MAX_BATCH_READINGS
/**
 * Longest topic and message kept in a reject sent over HTTP; the client cuts longer ones. Topics of the v1 grammar
 * are under 100 characters (5 levels, ids ≤ 64); the ingest's messages are one line of explanation.
 */
export const MAX_REJECT_TOPIC_LENGTH = 256
export const MAX_REJECT_MESSAGE_LENGTH = 500
/**
 * Largest request body of POST …/rejects: MAX_REJECTS_PER_REQUEST rejects of full-length topic and message with
 * their other fields (~200 bytes of keys, ids, times and key hash) come to ~480 kB of plain ASCII.
 */
export const REJECTS_BODY_LIMIT_BYTES = 1024 * 1024

export const RejectEntry = z.strictObject({
  at: z.number().int().min(0),
  deviceId: DeviceId.nullable(),
  topic: z.string().max(MAX_REJECT_TOPIC_LENGTH),
  code: z.enum(REJECT_CODES),
  message: z.string().max(MAX_REJECT_MESSAGE_LENGTH),
  index: z.number().int().min(0).nullable(),
  /** Identifies the MQTT message (the ingest's hash of topic and payload). */
  messageKey: z.string().min(1).max(128).nullable(),
  /** The broker sent the message again (RejectLog.record's `redelivery`): skip it if its key is logged already. */
  redelivery: z.boolean(),
})
export type RejectEntry = z.infer<typeof RejectEntry>

/** `POST …/rejects` → 204 once the rejects are committed to the API's reject log. */
export const RejectsBody = z.strictObject({
  rejects: z.array(RejectEntry).min(1).max(MAX_REJECTS_PER_REQUEST),
})
export type RejectsBody = z.infer<typeof RejectsBody>
