export const STORAGE_ERROR_CODES = [
  'DEVICE_EXISTS',
  'UNKNOWN_DEVICE',
  'UNKNOWN_SITE',
  'INVALID_SITE',
  'INVALID_DEVICE',
  'INVALID_PLACEMENT',
  'INVALID_ACCOUNT',
  'INVALID_QUERY',
  'INVALID_USER',
  'INVALID_TOKEN',
  'INVALID_AUDIT',
  'UNKNOWN_USER',
  /** A breach incident or its comment failed validation. */
  'INVALID_INCIDENT',
  'INVALID_COMMENT',
  'UNKNOWN_INCIDENT',
  /** An alert event, subscription, outbox message or delivery attempt failed validation (issue 4). */
  'INVALID_ALERT',
  'INVALID_SUBSCRIPTION',
  'UNKNOWN_SUBSCRIPTION',
  'UNKNOWN_ALERT_EVENT',
  'UNKNOWN_OUTBOX',
  /** A linear calibration failed validation, or cannot be retired at that time (issue 5). */
  'INVALID_CALIBRATION',
  /** A catalogue of measures or a measure taken at a site failed validation (issue 7). */
  'INVALID_MEASURE',
  /**
   * The record exists already (a user's email, a session or token id), or would break a uniqueness rule (a second
   * open incident for one site and rule; an incident moved to another site or rule).
   */
  'CONFLICT',
  'CORRUPT_ROW',
  'SCHEMA_TOO_NEW',
  'CLOSED',
  /** A store opened for reading only was asked to write (STORE=influxdb in a process that writes no readings). */
  'READ_ONLY',
  /**
   * A networked store could not answer now (unreachable, timed out, overloaded, or refused the credential); a later
   * attempt may succeed. The ingest retries it and holds the device's acknowledgement meanwhile.
   */
  'STORAGE_UNAVAILABLE',
] as const
export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[number]

/** A storage operation refused its input or found data it cannot read; `code` says which. */
export class StorageError extends Error {
  readonly code: StorageErrorCode

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StorageError'
    this.code = code
  }
}
