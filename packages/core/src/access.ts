import { z } from 'zod'
import { SiteId } from './ids.ts'

/**
 * Who may see and do what (issue 3, "People and permissions"). Pure rules; the API asks them for every
 * request. Everything not granted here is refused.
 *
 *   admin       everything, and manages users, tokens and the audit log
 *   staff       the environment committee: reads all sites, raw data, device health; exports; acknowledges
 *               and comments on breach incidents; edits the catalogue of measures and records measures taken
 *   principal   bound to one or more sites: raw data and device health of those sites only
 *   caretaker   device health, raw readings (to diagnose a sensor) and the reject log, every site
 *   researcher  API tokens for reading and exporting series; no device or personal data
 *   service     API tokens only, for the platform's own services on other machines (issue 6): an ingest reads
 *               the device registry and records rejects over HTTP (registry:read, rejects:write). No person
 *               holds it (UserInput refuses it), and admin does not hold its two permissions either: an admin
 *               session cannot read the registry feed or write rejects itself (it can still issue a service
 *               token, as it can issue any token; that is audited), and an ingest's token can read nothing else.
 *
 * Calibrations (issue 5): everyone with `export` may read them (an export names the calibration it applied);
 * creating and retiring them is calibrations:write, admin and staff only.
 *
 * Measures (issue 7): the catalogue of measures and the measures taken at a site are read with series:hourly (a
 * principal: own sites only); editing the catalogue and recording or deleting a measure taken is measures:write,
 * admin and staff only (the environment committee decides on measures).
 *
 * Breach incidents (issue 4) are part of the map (map:read on their site); acknowledging and commenting on
 * them ("staff can acknowledge and comment on an incident") is breaches:manage, admin and staff only.
 *
 * With the public-map switch on, anonymous visitors (and every role) may read the map and hourly or
 * daily values of every site; with it off, those too need a role and a principal sees only their sites.
 */
export const ROLES = ['admin', 'staff', 'principal', 'caretaker', 'researcher', 'service'] as const
export const Role = z.enum(ROLES)
export type Role = z.infer<typeof Role>

export const PERMISSIONS = [
  /** Sites with latest values, index band and a health summary (the map). */
  'map:read',
  /** Hourly and daily aggregates. */
  'series:hourly',
  /** Raw readings. */
  'series:raw',
  /** Each device of a site with its health (last seen, coverage). */
  'devices:read',
  /** Rejected telemetry. */
  'rejects:read',
  /** Bulk export of series (research). */
  'export',
  'users:manage',
  'tokens:manage',
  'audit:read',
  /** Acknowledge and comment on breach incidents (issue 4). */
  'breaches:manage',
  /** Own alert subscriptions and in-app notifications (issue 4); which topics a role may take is subscriptions.ts. */
  'alerts:subscribe',
  /** The alert outbox and its delivery attempts, for every recipient (issue 4: "visible to staff"). */
  'deliveries:read',
  /**
   * Create and retire per-device linear calibrations (issue 5, corrections.ts); reading them needs `export`.
   * They change every corrected value an export carries, so only admin and staff.
   */
  'calibrations:write',
  /**
   * The device registry as an ingest needs it (models, sensors, intervals, revocations, placements; never a secret
   * hash), from GET /internal/registry (issue 6: an ingest on another machine than the SQLite file).
   */
  'registry:read',
  /** Append to the reject log (POST /internal/rejects), as an ingest on another machine does. */
  'rejects:write',
  /**
   * Edit the catalogue of measures and record or delete a measure taken at a site (issue 7). Reading both is
   * series:hourly. Admin and staff only.
   */
  'measures:write',
] as const
export const Permission = z.enum(PERMISSIONS)
export type Permission = z.infer<typeof Permission>

/** API token scopes are permissions; a token holds the intersection of its scopes and its role's permissions. */
export const Scope = Permission
export type Scope = Permission

/** Held by the service role alone (see the table above). */
export const SERVICE_PERMISSIONS: readonly Permission[] = ['registry:read', 'rejects:write']

const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  admin: PERMISSIONS.filter((p) => !SERVICE_PERMISSIONS.includes(p)),
  staff: [
    'map:read',
    'series:hourly',
    'series:raw',
    'devices:read',
    'export',
    'breaches:manage',
    'alerts:subscribe',
    'deliveries:read',
    'calibrations:write',
    'measures:write',
  ],
  principal: ['map:read', 'series:hourly', 'series:raw', 'devices:read', 'alerts:subscribe'],
  caretaker: ['map:read', 'series:hourly', 'series:raw', 'devices:read', 'rejects:read', 'alerts:subscribe'],
  researcher: ['map:read', 'series:hourly', 'series:raw', 'export'],
  service: SERVICE_PERMISSIONS,
}

/** What anyone may read when the public-map switch is on. */
export const PUBLIC_PERMISSIONS: readonly Permission[] = ['map:read', 'series:hourly']

/** Roles only API tokens have: no person logs in as a service. */
export const TOKEN_ONLY_ROLES: readonly Role[] = ['service']

/** Roles whose site-level permissions hold only for the sites they are bound to. */
const SITE_BOUND_ROLES: ReadonlySet<Role> = new Set<Role>(['principal'])

export function rolePermissions(role: Role): readonly Permission[] {
  return ROLE_PERMISSIONS[role]
}

export function isSiteBound(role: Role): boolean {
  return SITE_BOUND_ROLES.has(role)
}

/** Permissions a token gets only when asked for by name: management and changes, not reading or exporting. */
const EXPLICIT_SCOPES: ReadonlySet<Permission> = new Set<Permission>([
  'users:manage',
  'tokens:manage',
  'audit:read',
  'breaches:manage',
  'alerts:subscribe',
  // Recipients' addresses: personal data, so a token gets it only by name.
  'deliveries:read',
  'calibrations:write',
  'measures:write',
])

/** The scopes a new token of `role` gets when none are asked for: all the role's read and export permissions. */
export function defaultScopes(role: Role): Permission[] {
  return ROLE_PERMISSIONS[role].filter((p) => !EXPLICIT_SCOPES.has(p))
}

/** Who is asking. A token carries its own role, sites and scopes; a user session carries the user's. */
export type Principal =
  | { readonly kind: 'anonymous' }
  | {
      readonly kind: 'user' | 'token'
      readonly id: string
      readonly role: Role
      /** Bound sites (principals); empty for other roles. */
      readonly sites: readonly string[]
      /** null = every permission of the role (sessions); tokens list theirs. */
      readonly scopes: readonly Permission[] | null
    }

export const ANONYMOUS: Principal = { kind: 'anonymous' }

export interface AccessPolicy {
  /** The public-map switch. */
  readonly publicMap: boolean
}

/** Whether `principal` holds `permission` at all (for some site at least). */
export function holds(principal: Principal, permission: Permission, policy: AccessPolicy): boolean {
  if (policy.publicMap && PUBLIC_PERMISSIONS.includes(permission)) return true
  if (principal.kind === 'anonymous') return false
  if (!ROLE_PERMISSIONS[principal.role].includes(permission)) return false
  return principal.scopes === null || principal.scopes.includes(permission)
}

/**
 * The sites `principal` may use `permission` on: 'all', a set of site ids, or none (an empty set).
 * Public permissions cover every site; a site-bound role covers its own sites.
 */
export function sitesFor(
  principal: Principal,
  permission: Permission,
  policy: AccessPolicy,
): 'all' | ReadonlySet<string> {
  if (policy.publicMap && PUBLIC_PERMISSIONS.includes(permission)) return 'all'
  if (!holds(principal, permission, policy) || principal.kind === 'anonymous') return new Set()
  return isSiteBound(principal.role) ? new Set(principal.sites) : 'all'
}

export function canOnSite(principal: Principal, permission: Permission, siteId: string, policy: AccessPolicy): boolean {
  const sites = sitesFor(principal, permission, policy)
  return sites === 'all' || sites.has(siteId)
}

/** A person who logs in. Email is the login name (stored lower-case). */
export const UserInput = z
  .object({
    email: z
      .email()
      .max(254)
      .transform((e) => e.toLowerCase()),
    name: z.string().trim().min(1).max(200).nullable().default(null),
    role: Role,
    sites: z.array(SiteId).max(1000).default([]),
  })
  .refine((u) => (u.role === 'principal' ? u.sites.length > 0 : u.sites.length === 0), {
    message: 'a principal is bound to at least one site (--site), and only principals are bound to sites',
    path: ['sites'],
  })
  .refine((u) => !TOKEN_ONLY_ROLES.includes(u.role), {
    message: 'the service role is for API tokens (skolluft token create --role service), not for people',
    path: ['role'],
  })
export type UserInput = z.infer<typeof UserInput>

/**
 * Smallest password length. NIST SP 800-63B §3.1.1.2: at least 8 characters for a password chosen by the
 * user; we ask for 12 because these accounts read data about named schools. No composition rules (same).
 */
export const MIN_PASSWORD_LENGTH = 12
/** scrypt's input stays cheap and a paste accident does not become a DoS (NIST allows a maximum ≥ 64). */
export const MAX_PASSWORD_LENGTH = 256

export const Password = z
  .string()
  .min(MIN_PASSWORD_LENGTH, `a password has at least ${MIN_PASSWORD_LENGTH} characters`)
  .max(MAX_PASSWORD_LENGTH, `a password has at most ${MAX_PASSWORD_LENGTH} characters`)
