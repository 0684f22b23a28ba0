import type Database from 'better-sqlite3'
import { StorageError } from '../errors.ts'
import { CALIBRATIONS_MIGRATION } from './calibrations.ts'
import { MEASURES_MIGRATION } from './measures.ts'
import { QUALITY_MIGRATION } from './quality-schema.ts'

/**
 * Schema history. Entry i brings the database from `PRAGMA user_version` i to i + 1. Never edit a step
 * that has shipped; append a new one.
 *
 * Notes on the layout:
 * - `readings` holds raw readings as received, one row per (device_id, ts), never updated. One REAL column
 *   per metric, NULL when the reading did not carry it. No index by site: site queries find the devices
 *   through `hourly_by_site`, which saves a page write per commit on the hot path.
 * - `hourly` holds running sums per (device, UTC hour, site), with n/sum/min/max columns per metric
 *   (`pm25_n`, `pm25_sum`, ...; min/max NULL while n = 0). The site is part of the key so a device moved in the
 *   middle of an hour leaves each site exactly the samples taken there; '' stands for "no site".
 * - `latest` holds, per device, the newest value of each metric with its own time (`pm25`, `pm25_ts`), plus
 *   ts/site_id/received_at of the newest reading; it only moves forward in time.
 * - `meta.revision` counts registry changes so other processes can poll for them.
 * - `rejects` is a bounded log; `reject_counts` keeps totals after rows roll off. device_id '' = unknown sender.
 * - (3) People: `users` (email stored lower-case, so the UNIQUE constraint is case-insensitive), their bound
 *   sites in `user_sites`, `api_tokens` with `token_sites` (site tables rather than JSON so "who may see site
 *   X" is a plain indexed query), `sessions`, and the append-only `audit_log`. Scopes are a JSON array (only
 *   ever read with their token). No index on hourly (hour_start) for the fleet-wide range scans: measured
 *   10× slower than walking each device's key range (see FLEET_SCAN in readings.ts).
 * - (4) Breach incidents (issue 4): `incidents`, one row per incident, escalations as a JSON array (only ever read
 *   with their incident). The partial unique index `incidents_open` holds only open incidents (end NULL, not
 *   withdrawn): it enforces one open incident per (site, rule) and is also the whole scan of the per-site open
 *   counts for the map. Comments in `incident_comments`, ordered by rowid within equal times.
 * - (5) Alerts (issue 4). `alert_events`: append-only, `key` UNIQUE is the dedupe (inserted with ON CONFLICT (key)
 *   DO NOTHING, so re-evaluating never doubles an alert); `data` JSON; the partial index `alert_events_pending`
 *   holds only live events not yet fanned out. `subscriptions` with their sites in `subscription_sites` (all_sites
 *   = 1 for 'all'; a table so "who subscribed to site X" is an indexed query and sites are foreign keys);
 *   quiet_hours JSON or NULL. `outbox`: one row per message, UNIQUE (event_id, subscription_id) (a digest has no
 *   event); message_id made at insert (`<o{id}.{uuid}@skolluft>`); the work queues are partial indexes that hold
 *   only live rows (`outbox_pending` by next_attempt_at, `outbox_leased` by lease_until, `outbox_deferred` by
 *   deliver_after), so sent history never slows the dispatcher; `outbox_notifications` holds delivered in_app rows
 *   per user; `outbox_recent` (user_id, created_at) serves the rate limit. `delivery_attempts` is the attempt log
 *   per row. `device_health` remembers each device's health state for transition alerts.
 * - (6) Per-reading quality flags (issue 5): `readings.qc` (bitmask, never touching the values), `hourly.qc_dirty`
 *   and `hourly.qc_version` (which device-hours are checked, with which rule version), the partial index
 *   `hourly_qc_dirty` (the worker's backlog). See quality-schema.ts.
 * - (7) Per-device linear calibrations (issue 5): `calibrations`, one row per version, UNIQUE (device, metric,
 *   version); rows never change except valid_to (retirement). See calibrations.ts.
 * - (8) Measures (issue 7): `measure_catalogue` (at most one row: the edited catalogue as JSON with its revision;
 *   no row = the default catalogue) and `site_measures` (measures taken, by site and date). See measures.ts.
 *
 * Wide rows (one per device-hour, columns per metric) instead of one row per metric: a reading then costs
 * three row writes instead of thirteen; measured about 4× faster per reading on the hot path.
 */

/** Metric columns created by step 1; frozen, a new metric gets its own step. */
const V1_METRICS = ['pm1', 'pm25', 'pm10', 'no2', 'temp', 'rh'] as const

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE readings (
    device_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    site_id TEXT,
    seq INTEGER,
    received_at INTEGER NOT NULL,
    pm1 REAL,
    pm25 REAL,
    pm10 REAL,
    no2 REAL,
    temp REAL,
    rh REAL,
    PRIMARY KEY (device_id, ts)
  ) WITHOUT ROWID;

  CREATE TABLE hourly (
    device_id TEXT NOT NULL,
    hour_start INTEGER NOT NULL,
    site_id TEXT NOT NULL,
    expected REAL NOT NULL,
    ${V1_METRICS.map((m) => `${m}_n INTEGER NOT NULL, ${m}_sum REAL, ${m}_min REAL, ${m}_max REAL,`).join('\n    ')}
    PRIMARY KEY (device_id, hour_start, site_id)
  ) WITHOUT ROWID;
  CREATE INDEX hourly_by_site ON hourly (site_id, hour_start);

  CREATE TABLE latest (
    device_id TEXT PRIMARY KEY NOT NULL,
    ts INTEGER NOT NULL,
    site_id TEXT,
    received_at INTEGER NOT NULL,
    ${V1_METRICS.map((m) => `${m} REAL, ${m}_ts INTEGER`).join(',\n    ')}
  ) WITHOUT ROWID;

  CREATE TABLE sites (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    stages TEXT NOT NULL,
    address TEXT,
    locality TEXT,
    municipality TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    demo INTEGER NOT NULL
  );

  CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    model TEXT NOT NULL,
    sensors TEXT NOT NULL,
    interval_s INTEGER NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  );

  CREATE TABLE placements (
    device_id TEXT NOT NULL REFERENCES devices (id),
    site_id TEXT NOT NULL REFERENCES sites (id),
    from_ts INTEGER NOT NULL,
    to_ts INTEGER,
    indoor INTEGER NOT NULL,
    height_m REAL,
    PRIMARY KEY (device_id, from_ts)
  );
  CREATE INDEX placements_by_site ON placements (site_id);
  CREATE UNIQUE INDEX placements_open ON placements (device_id) WHERE to_ts IS NULL;

  CREATE TABLE service_accounts (
    username TEXT PRIMARY KEY NOT NULL,
    secret_hash TEXT NOT NULL,
    role TEXT NOT NULL
  );

  CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
  );
  INSERT INTO meta (key, value) VALUES ('revision', 0);

  CREATE TABLE rejects (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    device_id TEXT,
    topic TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    batch_index INTEGER
  );
  CREATE INDEX rejects_by_device ON rejects (device_id, id);

  CREATE TABLE reject_counts (
    device_id TEXT NOT NULL,
    code TEXT NOT NULL,
    count INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, code)
  ) WITHOUT ROWID;
  `,
  // 2: rejects remember which MQTT message they came from, so a redelivered message is not counted twice.
  `
  ALTER TABLE rejects ADD COLUMN message_key TEXT;
  CREATE INDEX rejects_by_message ON rejects (message_key) WHERE message_key IS NOT NULL;
  `,
  // 3: users, API tokens, sessions and the audit log (issue 3).
  `
  CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    role TEXT NOT NULL,
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER
  );

  CREATE TABLE user_sites (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    site_id TEXT NOT NULL REFERENCES sites (id),
    PRIMARY KEY (user_id, site_id)
  ) WITHOUT ROWID;
  CREATE INDEX user_sites_by_site ON user_sites (site_id);

  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    scopes TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER
  );
  CREATE INDEX api_tokens_by_user ON api_tokens (user_id) WHERE user_id IS NOT NULL;

  CREATE TABLE token_sites (
    token_id TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    site_id TEXT NOT NULL REFERENCES sites (id),
    PRIMARY KEY (token_id, site_id)
  ) WITHOUT ROWID;
  CREATE INDEX token_sites_by_site ON token_sites (site_id);

  CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  );
  CREATE INDEX sessions_by_user ON sessions (user_id);
  CREATE INDEX sessions_by_expiry ON sessions (expires_at);

  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL
  );
  `,
  // 4: breach incidents and their comments (issue 4).
  `
  CREATE TABLE incidents (
    id TEXT PRIMARY KEY NOT NULL,
    site_id TEXT NOT NULL REFERENCES sites (id),
    pollutant TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    profile_version TEXT NOT NULL,
    severity TEXT NOT NULL,
    threshold REAL NOT NULL,
    start_ts INTEGER NOT NULL,
    end_ts INTEGER,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    peak REAL NOT NULL,
    peak_at INTEGER NOT NULL,
    escalations TEXT NOT NULL,
    retrospective INTEGER NOT NULL,
    withdrawn_at INTEGER,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    updated_at INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX incidents_open ON incidents (site_id, rule_id) WHERE end_ts IS NULL AND withdrawn_at IS NULL;
  CREATE INDEX incidents_by_site ON incidents (site_id, start_ts);
  CREATE INDEX incidents_by_start ON incidents (start_ts);

  CREATE TABLE incident_comments (
    id INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    text TEXT NOT NULL
  );
  CREATE INDEX incident_comments_by_incident ON incident_comments (incident_id, at, id);
  `,
  // 5: alert events, subscriptions, the outbox with its attempt log, device health states (issue 4).
  `
  CREATE TABLE alert_events (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    site_id TEXT REFERENCES sites (id),
    device_id TEXT REFERENCES devices (id),
    incident_id TEXT REFERENCES incidents (id),
    severity TEXT NOT NULL,
    urgent INTEGER NOT NULL,
    live INTEGER NOT NULL,
    at INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    fanned_out_at INTEGER
  );
  CREATE INDEX alert_events_pending ON alert_events (id) WHERE live = 1 AND fanned_out_at IS NULL;
  CREATE INDEX alert_events_by_incident ON alert_events (incident_id, id);
  CREATE INDEX alert_events_by_site ON alert_events (site_id, id);

  CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    topic TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT,
    all_sites INTEGER NOT NULL,
    min_severity TEXT NOT NULL,
    language TEXT NOT NULL,
    quiet_hours TEXT,
    unsubscribe_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER
  );
  CREATE INDEX subscriptions_by_user ON subscriptions (user_id, created_at);
  CREATE INDEX subscriptions_by_topic ON subscriptions (topic, created_at);

  CREATE TABLE subscription_sites (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    site_id TEXT NOT NULL REFERENCES sites (id),
    PRIMARY KEY (subscription_id, site_id)
  ) WITHOUT ROWID;
  CREATE INDEX subscription_sites_by_site ON subscription_sites (site_id);

  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    event_id INTEGER REFERENCES alert_events (id),
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    target TEXT,
    language TEXT NOT NULL,
    site_id TEXT,
    status TEXT NOT NULL,
    deliver_after INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    attempts INTEGER NOT NULL,
    subject TEXT NOT NULL,
    text TEXT NOT NULL,
    html TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    last_error TEXT,
    digest_id INTEGER REFERENCES outbox (id) ON DELETE SET NULL,
    read_at INTEGER
  );
  CREATE UNIQUE INDEX outbox_event_subscription ON outbox (event_id, subscription_id);
  CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';
  CREATE INDEX outbox_leased ON outbox (lease_until) WHERE status = 'sending';
  CREATE INDEX outbox_deferred ON outbox (deliver_after) WHERE status = 'deferred';
  CREATE INDEX outbox_by_status ON outbox (status, id);
  CREATE INDEX outbox_by_user ON outbox (user_id, id);
  CREATE INDEX outbox_recent ON outbox (user_id, created_at);
  CREATE INDEX outbox_notifications ON outbox (user_id, id) WHERE channel = 'in_app' AND status = 'sent';
  CREATE INDEX outbox_by_subscription ON outbox (subscription_id);

  CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    duration_ms INTEGER NOT NULL
  );
  CREATE INDEX delivery_attempts_by_outbox ON delivery_attempts (outbox_id, id);

  CREATE TABLE device_health (
    device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices (id),
    state TEXT NOT NULL,
    since INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 6: per-reading quality flags (issue 5).
  QUALITY_MIGRATION,
  // 7: per-device linear calibrations (issue 5).
  CALIBRATIONS_MIGRATION,
  // 8: the catalogue of measures and the measures taken at sites (issue 7).
  MEASURES_MIGRATION,
]

/**
 * Brings the schema up to date. Several processes may open the same file at once: the version is read
 * again under BEGIN IMMEDIATE (the write lock), so exactly one of them applies each step and the others
 * wait on busy_timeout and then find nothing to do.
 */
export function migrate(db: Database.Database): void {
  const target = MIGRATIONS.length
  if (userVersion(db) === target) return
  db.exec('BEGIN IMMEDIATE')
  try {
    const current = userVersion(db)
    if (current > target) {
      throw new StorageError(
        'SCHEMA_TOO_NEW',
        `database schema version ${current} is newer than this program knows (${target}); upgrade skolluft`,
      )
    }
    for (let version = current; version < target; version++) {
      const step = MIGRATIONS[version]
      if (step !== undefined) db.exec(step)
    }
    // PRAGMA takes no bound parameters; target is our own integer.
    db.pragma(`user_version = ${target}`)
    db.exec('COMMIT')
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK')
    throw error
  }
}

function userVersion(db: Database.Database): number {
  const version = db.pragma('user_version', { simple: true })
  return typeof version === 'number' ? version : 0
}
