import { setTimeout as sleep } from 'node:timers/promises'
import { ALL_TELEMETRY_FILTER } from '@skolluft/core'
import mqtt from 'mqtt'
import { connectIngest, IngestError, type IngestOptions, type IngestStats, telemetryFilter } from './ingest.ts'

/**
 * How long nothing may arrive, with every received message committed and acknowledged, before the session counts
 * as drained. Once the UNSUBACK is back the broker starts no new turns for us; what it still holds (in-flight and
 * queued) it sends right after CONNACK, up to max_inflight_messages (200 in infra/mosquitto/mosquitto.conf) at a
 * time, and the next queued one as soon as a PUBACK frees a slot: gaps are a network round trip, milliseconds on
 * a LAN. Our own waits (a slow or retrying commit) keep messages in flight, which holds the clock. 3 s is three
 * orders of magnitude above the gap and short enough for an operator at a terminal.
 */
export const LEAVE_QUIET_MS = 3_000
/** How often the drain checks for quiet. */
const LEAVE_POLL_MS = 100

export interface LeaveOptions extends IngestOptions {
  /** Default LEAVE_QUIET_MS. */
  readonly quietMs?: number
}

export interface LeaveResult {
  /** The handling counters: `messages` received from the session, `stored` readings new to storage, … */
  readonly stats: IngestStats
  /** Whether the broker still held a session for the client id (false: there was nothing to leave). */
  readonly sessionPresent: boolean
}

/**
 * Retires one worker of a shared group for good (`skolluft ingest --leave`). Mosquitto 2.0.11 keeps giving a stopped
 * worker's persistent session its turns (see `telemetryFilter`), so a worker that is simply removed strands every
 * Nth message. Run with the stopped worker's client id, this:
 * 1. connects with its persistent session (the broker resends the in-flight messages, then the queue);
 * 2. UNSUBSCRIBEs the shared filter at once, so the session gets no new turns [MQTT-3.10.4-2];
 * 3. stores what arrives exactly as the ingest does (PUBACK after commit);
 * 4. once nothing has arrived for `quietMs` and nothing is in flight, disconnects and connects again with a clean
 *    session, which makes the broker discard the session [MQTT-3.1.2-6], then disconnects (nothing is kept).
 * The worker must be stopped first: a running one with the same id would take the connection over
 * [MQTT-3.1.4-2], which ends this with LEAVE_INTERRUPTED (its session intact).
 */
export async function leaveSharedGroup(options: LeaveOptions): Promise<LeaveResult> {
  const group = options.mqtt.sharedGroup
  if (group === undefined)
    throw new IngestError('NO_SHARED_GROUP', 'a worker without a shared group has no group to leave')
  const quietMs = options.quietMs ?? LEAVE_QUIET_MS
  const clock = options.clock ?? Date.now
  let lost = false
  const connection = await connectIngest(options, {
    reconnect: false,
    onLost: () => {
      lost = true
    },
  })
  const { client, clientId, log } = connection
  const filter = telemetryFilter(group)
  try {
    // The plain filter too: a session that once ran without a group still holds it.
    await client.unsubscribeAsync([filter, ALL_TELEMETRY_FILTER])
    log.info({ clientId, filter, sessionPresent: connection.sessionPresent }, 'unsubscribed; draining the session')
    const unsubscribedAt = clock()
    for (;;) {
      if (lost) {
        throw new IngestError(
          'LEAVE_INTERRUPTED',
          `the connection as ${clientId} was lost before the session was drained (is a worker with this client id still running? stop it first); the session is kept, run --leave again`,
        )
      }
      const quietSince = Math.max(unsubscribedAt, connection.lastMessageAt())
      if (connection.inFlight() === 0 && clock() - quietSince >= quietMs) break
      await sleep(LEAVE_POLL_MS)
    }
  } catch (error) {
    await connection.close()
    throw error
  }
  await connection.close({ graceful: true })
  await endSession(options, clientId)
  const stats = connection.stats()
  log.info({ clientId, group, messages: stats.messages, stored: stats.stored }, 'left the shared group')
  return { stats, sessionPresent: connection.sessionPresent }
}

/** Connects once more with a clean session, which discards the persistent one [MQTT-3.1.2-6], and disconnects. */
async function endSession(options: IngestOptions, clientId: string): Promise<void> {
  try {
    const client = await mqtt.connectAsync(options.mqtt.url, {
      clientId,
      username: options.mqtt.username,
      password: options.mqtt.password,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    })
    await client.endAsync()
  } catch (error) {
    throw new IngestError(
      'LEAVE_INCOMPLETE',
      `the session was drained but could not be ended (${error instanceof Error ? error.message : String(error)}); run --leave again`,
      { cause: error },
    )
  }
}
