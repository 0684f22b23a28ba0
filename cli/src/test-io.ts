import type { CliIo } from './main.ts'

/** Test support: a CliIo that keeps what a command printed (each line ends in a newline). */
export interface Captured {
  readonly io: CliIo
  readonly stdout: () => string
  readonly stderr: () => string
}

export function capture(): Captured {
  const out: string[] = []
  const err: string[] = []
  return {
    io: {
      out: (t) => out.push(t.endsWith('\n') ? t : `${t}\n`),
      err: (t) => err.push(t.endsWith('\n') ? t : `${t}\n`),
    },
    stdout: () => out.join(''),
    stderr: () => err.join(''),
  }
}
