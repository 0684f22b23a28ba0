import { DEFAULT_REMINDER_INTERVAL_MS } from '@skolluft/core'
import type { NewAlertEvent, Storage } from '@skolluft/storage'
import { AlertEventData } from './event-data.ts'

/**
 * Re-notification for long incidents (issue 4; reference §5.2 "after a re-notify interval (e.g. 24 h)"): an
 * incident that is still open `intervalMs` after its last live message gets a 'reminder'. Only incidents that
 * were sent live at all are reminded of (retrospective ones and those of non-alerting profiles never were). The
 * key counts intervals since opening, so a restart or a second instance adds the same reminder once.
 */
export interface Reminders {
  check(): Promise<number>
}

/** Open incidents looked at per check. */
const MAX_OPEN_INCIDENTS = 5_000
const NOTIFYING_KINDS = new Set(['opened', 'escalated', 'reminder'])

export function createReminders(options: {
  readonly storage: Pick<Storage, 'breaches' | 'alerts'>
  readonly clock: () => number
  readonly intervalMs?: number
  /**
   * Rule ids evaluated today. An incident of a rule no longer evaluated (its profile expired, like EU 2008/50 after
   * 2029, or was taken out of ALERT_PROFILES) can no longer close, so it is not reminded of either. Absent: all.
   */
  readonly evaluatedRules?: () => ReadonlySet<string>
}): Reminders {
  const { storage, clock } = options
  const intervalMs = options.intervalMs ?? DEFAULT_REMINDER_INTERVAL_MS
  return {
    async check() {
      const now = clock()
      const open = await storage.breaches.listIncidents({ state: 'open', limit: MAX_OPEN_INCIDENTS })
      const events: NewAlertEvent[] = []
      const evaluated = options.evaluatedRules?.()
      for (const incident of open) {
        if (incident.retrospective || (evaluated !== undefined && !evaluated.has(incident.ruleId))) continue
        const history = await storage.alerts.listEvents({ incidentId: incident.id, limit: 100 })
        const live = history.filter((e) => e.live && NOTIFYING_KINDS.has(e.kind))
        const opened = live.find((e) => e.kind === 'opened')
        if (opened === undefined) continue
        const last = Math.max(...live.map((e) => e.createdAt))
        if (now - last < intervalMs) continue
        const base = AlertEventData.safeParse(opened.data)
        if (!base.success) continue
        const n = Math.floor((now - opened.createdAt) / intervalMs)
        events.push({
          key: `${incident.id}:reminder:${n}`,
          kind: 'reminder',
          topic: 'breaches',
          siteId: incident.siteId,
          deviceId: null,
          incidentId: incident.id,
          severity: incident.severity,
          urgent: false,
          live: true,
          at: now,
          data: { ...base.data, kind: 'reminder', peak: incident.peak, peakAt: incident.peakAt },
        })
      }
      return events.length === 0 ? 0 : storage.alerts.appendEvents(events, now)
    },
  }
}
