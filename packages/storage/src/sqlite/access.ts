import { randomUUID } from 'node:crypto'
import { Permission, Role, SiteId } from '@skolluft/core'
import type Database from 'better-sqlite3'
import { z } from 'zod'
import { StorageError, type StorageErrorCode } from '../errors.ts'
import type {
  AccessStore,
  ApiTokenRecord,
  AuditEntry,
  NewApiToken,
  NewUser,
  SessionRecord,
  UserPatch,
  UserRecord,
} from '../types.ts'

/** Longest email address (RFC 5321 §4.5.3.1.3 limits a path to 256 octets including the angle brackets). */
const MAX_EMAIL_LENGTH = 254

const Email = z.email().max(MAX_EMAIL_LENGTH)
const SiteIds = z.array(SiteId)
const Scopes = z.array(Permission)
/** What `detail` may hold: a JSON object. */
const AuditDetail = z.record(z.string(), z.unknown())

interface UserRow {
  id: string
  email: string
  name: string | null
  role: string
  password_hash: string | null
  created_at: number
  disabled_at: number | null
}

interface TokenRow {
  id: string
  name: string
  role: string
  scopes: string
  user_id: string | null
  secret_hash: string
  created_at: number
  expires_at: number | null
  revoked_at: number | null
  last_used_at: number | null
}

interface SessionRow {
  id: string
  user_id: string
  secret_hash: string
  csrf_token: string
  created_at: number
  expires_at: number
  last_seen_at: number
}

interface AuditRow {
  id: number
  at: number
  actor: string
  action: string
  target: string | null
  detail: string
}

interface SiteLink {
  owner: string
  site_id: string
}

export function createSqliteAccessStore(db: Database.Database): AccessStore {
  const siteExists = db.prepare<[string], { id: string }>('SELECT id FROM sites WHERE id = ?')

  // Users.
  const insertUser = db.prepare<UserRow, never>(
    `INSERT INTO users (id, email, name, role, password_hash, created_at, disabled_at)
     VALUES (@id, @email, @name, @role, @password_hash, @created_at, @disabled_at)`,
  )
  const selectUser = db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?')
  const selectUserByEmail = db.prepare<[string], UserRow>('SELECT * FROM users WHERE email = ?')
  const selectUsers = db.prepare<[], UserRow>('SELECT * FROM users ORDER BY email')
  const writeUserFields = db.prepare<[string | null, string, string | null, number | null, string], never>(
    'UPDATE users SET name = ?, role = ?, password_hash = ?, disabled_at = ? WHERE id = ?',
  )
  const countActive = db.prepare<[], { count: number }>('SELECT count(*) AS count FROM users WHERE disabled_at IS NULL')
  const countActiveRole = db.prepare<[string], { count: number }>(
    'SELECT count(*) AS count FROM users WHERE disabled_at IS NULL AND role = ?',
  )
  const selectUserSites = db.prepare<[string], SiteLink>(
    'SELECT user_id AS owner, site_id FROM user_sites WHERE user_id = ? ORDER BY site_id',
  )
  const selectAllUserSites = db.prepare<[], SiteLink>(
    'SELECT user_id AS owner, site_id FROM user_sites ORDER BY user_id, site_id',
  )
  const insertUserSite = db.prepare<[string, string], never>('INSERT INTO user_sites (user_id, site_id) VALUES (?, ?)')
  const deleteUserSites = db.prepare<[string], never>('DELETE FROM user_sites WHERE user_id = ?')

  // Sessions.
  const insertSession = db.prepare<SessionRow, never>(
    `INSERT INTO sessions (id, user_id, secret_hash, csrf_token, created_at, expires_at, last_seen_at)
     VALUES (@id, @user_id, @secret_hash, @csrf_token, @created_at, @expires_at, @last_seen_at)`,
  )
  const selectSession = db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?')
  const updateSession = db.prepare<[number, number, string], never>(
    'UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?',
  )
  const deleteSession = db.prepare<[string], never>('DELETE FROM sessions WHERE id = ?')
  const deleteSessionsOfUser = db.prepare<[string], never>('DELETE FROM sessions WHERE user_id = ?')
  const deleteExpired = db.prepare<[number], never>('DELETE FROM sessions WHERE expires_at <= ?')

  // Tokens.
  const insertToken = db.prepare<TokenRow, never>(
    `INSERT INTO api_tokens (id, name, role, scopes, user_id, secret_hash, created_at, expires_at, revoked_at,
       last_used_at)
     VALUES (@id, @name, @role, @scopes, @user_id, @secret_hash, @created_at, @expires_at, @revoked_at,
       @last_used_at)`,
  )
  const selectToken = db.prepare<[string], TokenRow>('SELECT * FROM api_tokens WHERE id = ?')
  const selectTokens = db.prepare<[], TokenRow>('SELECT * FROM api_tokens ORDER BY created_at, id')
  const tokenKnown = db.prepare<[string], { id: string }>('SELECT id FROM api_tokens WHERE id = ?')
  const revoke = db.prepare<[number, string], never>(
    'UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
  )
  const touchToken = db.prepare<[number, string], never>('UPDATE api_tokens SET last_used_at = ? WHERE id = ?')
  const selectTokenSites = db.prepare<[string], SiteLink>(
    'SELECT token_id AS owner, site_id FROM token_sites WHERE token_id = ? ORDER BY site_id',
  )
  const selectAllTokenSites = db.prepare<[], SiteLink>(
    'SELECT token_id AS owner, site_id FROM token_sites ORDER BY token_id, site_id',
  )
  const insertTokenSite = db.prepare<[string, string], never>(
    'INSERT INTO token_sites (token_id, site_id) VALUES (?, ?)',
  )

  // Audit log.
  const insertAudit = db.prepare<[number, string, string, string | null, string], never>(
    'INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)',
  )
  const listAuditNewest = db.prepare<[number], AuditRow>('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?')
  const listAuditBefore = db.prepare<[number, number], AuditRow>(
    'SELECT * FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?',
  )

  function requireSites(sites: readonly string[]): void {
    for (const site of sites) {
      if (siteExists.get(site) === undefined) {
        throw new StorageError('UNKNOWN_SITE', `site ${JSON.stringify(site)} does not exist`)
      }
    }
  }

  function requireUser(userId: string): void {
    if (selectUser.get(userId) === undefined) {
      throw new StorageError('UNKNOWN_USER', `user ${JSON.stringify(userId)} does not exist`)
    }
  }

  function readUser(id: string): UserRecord | undefined {
    const row = selectUser.get(id)
    return row === undefined ? undefined : userFromRow(row, siteIds(selectUserSites.all(id)))
  }

  const writeUser = db.transaction((row: UserRow, sites: readonly string[]): UserRecord => {
    if (selectUserByEmail.get(row.email) !== undefined) {
      throw new StorageError('CONFLICT', `a user with email ${JSON.stringify(row.email)} exists`)
    }
    if (selectUser.get(row.id) !== undefined) {
      throw new StorageError('CONFLICT', `a user with id ${JSON.stringify(row.id)} exists`)
    }
    requireSites(sites)
    insertUser.run(row)
    for (const site of sites) insertUserSite.run(row.id, site)
    const record = readUser(row.id)
    if (record === undefined) throw new StorageError('UNKNOWN_USER', `user ${row.id} vanished while adding`)
    return record
  })

  const writeUserPatch = db.transaction(
    (id: string, patch: UserPatch, sites: readonly string[] | undefined): UserRecord | undefined => {
      const current = selectUser.get(id)
      if (current === undefined) return undefined
      writeUserFields.run(
        patch.name !== undefined ? patch.name : current.name,
        patch.role ?? current.role,
        patch.passwordHash !== undefined ? patch.passwordHash : current.password_hash,
        patch.disabledAt !== undefined ? patch.disabledAt : current.disabled_at,
        id,
      )
      if (sites !== undefined) {
        requireSites(sites)
        deleteUserSites.run(id)
        for (const site of sites) insertUserSite.run(id, site)
      }
      return readUser(id)
    },
  )

  const writeSession = db.transaction((row: SessionRow): void => {
    if (selectSession.get(row.id) !== undefined) {
      throw new StorageError('CONFLICT', `a session with id ${JSON.stringify(row.id)} exists`)
    }
    requireUser(row.user_id)
    insertSession.run(row)
  })

  const writeToken = db.transaction((row: TokenRow, sites: readonly string[]): ApiTokenRecord => {
    if (tokenKnown.get(row.id) !== undefined) {
      throw new StorageError('CONFLICT', `a token with id ${JSON.stringify(row.id)} exists`)
    }
    if (row.user_id !== null) requireUser(row.user_id)
    requireSites(sites)
    insertToken.run(row)
    for (const site of sites) insertTokenSite.run(row.id, site)
    return tokenFromRow(row, siteIds(selectTokenSites.all(row.id)))
  })

  return {
    async addUser(user: NewUser, now: number): Promise<UserRecord> {
      const email = Email.safeParse(user.email.toLowerCase())
      if (!email.success) throw invalid('INVALID_USER', 'user email', email.error)
      const role = Role.safeParse(user.role)
      if (!role.success) throw invalid('INVALID_USER', `user ${email.data}: role`, role.error)
      const sites = siteList('INVALID_USER', `user ${email.data}`, user.sites)
      const row: UserRow = {
        id: user.id ?? `usr_${randomUUID()}`,
        email: email.data,
        name: user.name,
        role: role.data,
        password_hash: user.passwordHash,
        created_at: now,
        disabled_at: null,
      }
      return writeUser.immediate(row, sites)
    },

    async getUser(id) {
      return readUser(id)
    },

    async getUserByEmail(email) {
      const row = selectUserByEmail.get(email.toLowerCase())
      return row === undefined ? undefined : userFromRow(row, siteIds(selectUserSites.all(row.id)))
    },

    async listUsers() {
      const sites = groupSites(selectAllUserSites.all())
      return selectUsers.all().map((row) => userFromRow(row, sites.get(row.id) ?? []))
    },

    async updateUser(id, patch) {
      if (patch.role !== undefined && !Role.safeParse(patch.role).success) {
        throw new StorageError('INVALID_USER', `user ${id}: unknown role ${JSON.stringify(patch.role)}`)
      }
      const sites = patch.sites === undefined ? undefined : siteList('INVALID_USER', `user ${id}`, patch.sites)
      return writeUserPatch.immediate(id, patch, sites)
    },

    async countUsers(role) {
      const row = role === undefined ? countActive.get() : countActiveRole.get(role)
      return row?.count ?? 0
    },

    async createSession(session) {
      writeSession.immediate({
        id: session.id,
        user_id: session.userId,
        secret_hash: session.secretHash,
        csrf_token: session.csrfToken,
        created_at: session.createdAt,
        expires_at: session.expiresAt,
        last_seen_at: session.lastSeenAt,
      })
    },

    async getSession(id) {
      const row = selectSession.get(id)
      return row === undefined ? undefined : sessionFromRow(row)
    },

    async touchSession(id, lastSeenAt, expiresAt) {
      return updateSession.run(lastSeenAt, expiresAt, id).changes > 0
    },

    async deleteSession(id) {
      return deleteSession.run(id).changes > 0
    },

    async deleteUserSessions(userId) {
      return deleteSessionsOfUser.run(userId).changes
    },

    async deleteExpiredSessions(now) {
      return deleteExpired.run(now).changes
    },

    async createToken(token: NewApiToken) {
      const where = `token ${JSON.stringify(token.id)}`
      const role = Role.safeParse(token.role)
      if (!role.success) throw invalid('INVALID_TOKEN', `${where}: role`, role.error)
      const scopes = Scopes.safeParse(token.scopes)
      if (!scopes.success) throw invalid('INVALID_TOKEN', `${where}: scopes`, scopes.error)
      const sites = siteList('INVALID_TOKEN', where, token.sites)
      const row: TokenRow = {
        id: token.id,
        name: token.name,
        role: role.data,
        scopes: JSON.stringify([...new Set(scopes.data)]),
        user_id: token.userId,
        secret_hash: token.secretHash,
        created_at: token.createdAt,
        expires_at: token.expiresAt,
        revoked_at: null,
        last_used_at: null,
      }
      return writeToken.immediate(row, sites)
    },

    async getToken(id) {
      const row = selectToken.get(id)
      return row === undefined ? undefined : tokenFromRow(row, siteIds(selectTokenSites.all(id)))
    },

    async listTokens() {
      const sites = groupSites(selectAllTokenSites.all())
      return selectTokens.all().map((row) => tokenFromRow(row, sites.get(row.id) ?? []))
    },

    async revokeToken(id, now) {
      if (revoke.run(now, id).changes > 0) return true
      return tokenKnown.get(id) !== undefined
    },

    async touchToken(id, now) {
      return touchToken.run(now, id).changes > 0
    },

    async appendAudit(entry): Promise<AuditEntry> {
      const detail = AuditDetail.safeParse(entry.detail)
      if (!detail.success) throw invalid('INVALID_AUDIT', `audit entry ${entry.action}: detail`, detail.error)
      let json: string
      try {
        json = JSON.stringify(detail.data)
      } catch (error) {
        // A BigInt or a cycle: not JSON.
        throw new StorageError('INVALID_AUDIT', `audit entry ${entry.action}: detail is not JSON`, { cause: error })
      }
      const id = Number(insertAudit.run(entry.at, entry.actor, entry.action, entry.target, json).lastInsertRowid)
      // Returned as listAudit will return it: what JSON keeps of the detail.
      return auditFromRow({
        id,
        at: entry.at,
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        detail: json,
      })
    },

    async listAudit({ limit, beforeId }) {
      if (limit <= 0) return []
      const rows = beforeId === undefined ? listAuditNewest.all(limit) : listAuditBefore.all(beforeId, limit)
      return rows.map(auditFromRow)
    },
  }
}

/** Validated, sorted, without duplicates. */
function siteList(code: StorageErrorCode, where: string, sites: readonly string[]): string[] {
  const parsed = SiteIds.safeParse(sites)
  if (!parsed.success) throw invalid(code, `${where}: sites`, parsed.error)
  return [...new Set(parsed.data)].sort()
}

function invalid(code: StorageErrorCode, what: string, error: z.ZodError): StorageError {
  const issue = error.issues[0]
  const path = issue === undefined || issue.path.length === 0 ? '' : ` (${issue.path.join('.')})`
  return new StorageError(code, `${what} is invalid${path}: ${issue?.message ?? 'invalid'}`, { cause: error })
}

function siteIds(links: readonly SiteLink[]): string[] {
  return links.map((link) => link.site_id)
}

function groupSites(links: readonly SiteLink[]): Map<string, string[]> {
  const byOwner = new Map<string, string[]>()
  for (const link of links) {
    const list = byOwner.get(link.owner)
    if (list) list.push(link.site_id)
    else byOwner.set(link.owner, [link.site_id])
  }
  return byOwner
}

function storedRole(kind: string, id: string, value: string): Role {
  const role = Role.safeParse(value)
  if (!role.success) throw new StorageError('CORRUPT_ROW', `${kind} ${id} has an unknown role ${value}`)
  return role.data
}

function userFromRow(row: UserRow, sites: string[]): UserRecord {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: storedRole('user', row.id, row.role),
    sites,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    disabledAt: row.disabled_at,
  }
}

function tokenFromRow(row: TokenRow, sites: string[]): ApiTokenRecord {
  const scopes = Scopes.safeParse(parseJson(row.scopes))
  if (!scopes.success) throw new StorageError('CORRUPT_ROW', `token ${row.id} has invalid scopes in the database`)
  return {
    id: row.id,
    name: row.name,
    role: storedRole('token', row.id, row.role),
    scopes: scopes.data,
    sites,
    userId: row.user_id,
    secretHash: row.secret_hash,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  }
}

function sessionFromRow(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    secretHash: row.secret_hash,
    csrfToken: row.csrf_token,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastSeenAt: row.last_seen_at,
  }
}

function auditFromRow(row: AuditRow): AuditEntry {
  const detail = AuditDetail.safeParse(parseJson(row.detail))
  if (!detail.success) throw new StorageError('CORRUPT_ROW', `audit entry ${row.id} has an invalid detail`)
  return { id: row.id, at: row.at, actor: row.actor, action: row.action, target: row.target, detail: detail.data }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
