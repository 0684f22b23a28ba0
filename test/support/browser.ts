import { existsSync } from 'node:fs'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'

/**
 * Headless Chromium for browser tests: Debian's `chromium` package (installed by .ci/run), driven by
 * playwright-core (which downloads no browser of its own). CHROMIUM_PATH points elsewhere if needed.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
]

/**
 * Whether browser tests can run here. Without a Chromium they are skipped with the reason printed,
 * so `npm test` stays usable on a machine without one, unless SKOLLUFT_REQUIRE_BROWSER=1 (set by
 * .ci/run), where a missing Chromium fails the run instead of skipping silently past the proof.
 */
export function browserAvailable(): boolean {
  if (existsSync(CHROMIUM_PATH)) return true
  const reason = `no Chromium at ${CHROMIUM_PATH} (Debian: apt-get install -y chromium, or set CHROMIUM_PATH)`
  if (process.env.SKOLLUFT_REQUIRE_BROWSER === '1') throw new Error(`browser tests required but ${reason}`)
  console.warn(`SKIPPING browser tests: ${reason}`)
  return false
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `no Chromium at ${CHROMIUM_PATH}: install it (Debian: apt-get install -y chromium) or set CHROMIUM_PATH`,
    )
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
}

/**
 * A page in `context` whose `problems` collect console errors and warnings, uncaught page errors and
 * content-security-policy violations (reported by the page itself, so none hides in a warning).
 */
export async function watchedPage(context: BrowserContext): Promise<{ page: Page; problems: string[] }> {
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)
    })
  })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      problems.push(`console ${message.type()}: ${message.text()}`)
    }
  })
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  return { page, problems }
}
