import {
  DEFAULT_ALERTING_PROFILES,
  DEFAULT_EVALUATED_PROFILES,
  PROFILES,
  type ProfileSelection,
  profileSelectionSchema,
} from '@skolluft/core'
import { ConfigError } from '@skolluft/runtime'
import { z } from 'zod'

const csv = (value: unknown) =>
  typeof value === 'string'
    ? value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
    : value

/** Environment of the alerts service (profile defaults: core thresholds.ts DEFAULT_EVALUATED_PROFILES). */
export const AlertsEnv = z.object({
  MQTT_URL: z
    .url({ protocol: /^mqtts?$/, error: 'MQTT_URL must be an mqtt:// or mqtts:// URL' })
    .default('mqtt://127.0.0.1:1883'),
  MQTT_USERNAME: z.string().min(1).optional(),
  MQTT_PASSWORD: z.string().min(1).optional(),
  ALERT_PROFILES: z.preprocess(csv, z.array(z.string()).default(DEFAULT_EVALUATED_PROFILES)),
  ALERT_PROFILES_NOTIFY: z.preprocess(csv, z.array(z.string()).default(DEFAULT_ALERTING_PROFILES)),
  /** Where people open the dashboard; links in messages point here. */
  PUBLIC_URL: z
    .url({ protocol: /^https?$/, error: 'PUBLIC_URL must be an http(s) URL' })
    .default('http://localhost:8080'),
  /** smtp://user:pass@host:port (STARTTLS when offered) or smtps://… (TLS); unset: e-mail subscriptions fail visibly. */
  SMTP_URL: z.url({ protocol: /^smtps?$/, error: 'SMTP_URL must be an smtp:// or smtps:// URL' }).optional(),
  MAIL_FROM: z.string().min(3).default('skolluft <noreply@localhost>'),
  ALERT_REMINDER_HOURS: z.coerce
    .number()
    .min(1)
    .max(24 * 14)
    .default(24),
  /** How long a claimed outbox row stays reserved (a crashed sender's rows are sent again after it); > SMTP_TIMEOUT_MS. */
  ALERTS_LEASE_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(120_000),
  /** Budget for one e-mail (connect to accepted). */
  SMTP_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
  /** production: webhooks must be https. */
  NODE_ENV: z.string().default('development'),
})
export type AlertsEnv = z.infer<typeof AlertsEnv>

/** The profile selection of ALERT_PROFILES / ALERT_PROFILES_NOTIFY, or a ConfigError naming the variable. */
export function alertsSelection(env: Pick<AlertsEnv, 'ALERT_PROFILES' | 'ALERT_PROFILES_NOTIFY'>): ProfileSelection {
  const selection = profileSelectionSchema(PROFILES).safeParse({
    evaluate: env.ALERT_PROFILES,
    alert: env.ALERT_PROFILES_NOTIFY,
  })
  if (selection.success) return selection.data
  throw new ConfigError(
    selection.error.issues.map(
      (issue) => `${issue.path[0] === 'alert' ? 'ALERT_PROFILES_NOTIFY' : 'ALERT_PROFILES'}: ${issue.message}`,
    ),
  )
}
