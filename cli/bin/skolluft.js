#!/usr/bin/env node
// Entry point for `npx skolluft`: runs the TypeScript sources through tsx, so there is no build step.
import { register } from 'tsx/esm/api'

register()
const { runCli } = await import('../src/main.ts')
process.exitCode = await runCli(process.argv.slice(2), process.env)
