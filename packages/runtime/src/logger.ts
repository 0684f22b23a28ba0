import { pino } from 'pino'

export type Logger = pino.Logger

export interface LoggerOptions {
  readonly level?: string
  readonly name?: string
  /** Where JSON lines go; defaults to stdout. Tests pass a stream to read what was logged. */
  readonly destination?: pino.DestinationStream
}

/**
 * Structured JSON logs. Fields that could carry credentials are redacted wherever they appear,
 * so a careless `log.info({ password })` cannot leak one.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name ?? 'skolluft',
      redact: {
        paths: ['password', 'secret', 'token', '*.password', '*.secret', '*.token', 'authorization', '*.authorization'],
        censor: '[redacted]',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  )
}

/** A logger that drops everything; for tests that do not inspect logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
