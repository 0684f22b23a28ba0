import { createHash } from 'node:crypto'
import type { AlertChannel, SubscriptionTopic } from '@skolluft/core'

/**
 * The small HTML pages of the unsubscribe link (issue 4, "an unsubscribe link"), in Swedish and English. No
 * script, no external resources: one inline style block allowed by its hash, and a form that posts back to the
 * page's own URL (a form without `action` submits to the document's URL, query string included; WHATWG HTML
 * §4.10.21.3), so the page works behind any path prefix a proxy adds.
 */

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}' +
  'h1{font-size:1.4rem}p.en{color:#555}button{font:inherit;padding:.5rem 1rem;cursor:pointer}'

/** CSP source for the style block (CSP Level 3 §8.3: a hash source matches an inline block with that digest). */
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`

/**
 * The pages' content security policy: nothing loads, the style block by its hash, forms post only to this origin
 * (form-action does not fall back to default-src), never framed.
 */
export const UNSUBSCRIBE_PAGE_CSP = `default-src 'none'; style-src ${STYLE_HASH}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`

function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

const TOPIC_TEXT: Readonly<Record<SubscriptionTopic, { sv: string; en: string }>> = {
  breaches: { sv: 'larm om dålig luft (gränsvärden)', en: 'alerts about poor air (limit values)' },
  'device-health': { sv: 'larm om mätarnas skick', en: 'alerts about the sensors’ health' },
}

const CHANNEL_TEXT: Readonly<Record<AlertChannel, { sv: string; en: string }>> = {
  email: { sv: 'e-post', en: 'e-mail' },
  webhook: { sv: 'webhook', en: 'webhook' },
  in_app: { sv: 'aviseringar i kartan', en: 'notifications on the map' },
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="sv">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`
}

export interface SubscriptionSummary {
  readonly topic: SubscriptionTopic
  readonly channel: AlertChannel
}

function what(s: SubscriptionSummary): { sv: string; en: string } {
  return {
    sv: `${TOPIC_TEXT[s.topic].sv} via ${CHANNEL_TEXT[s.channel].sv}`,
    en: `${TOPIC_TEXT[s.topic].en} by ${CHANNEL_TEXT[s.channel].en}`,
  }
}

/** The confirmation page: a GET never unsubscribes (mail scanners follow links), the button posts. */
export function confirmPage(s: SubscriptionSummary): string {
  const w = what(s)
  return page(
    'Avsluta prenumeration / Unsubscribe',
    `<h1>Avsluta prenumeration? <span lang="en">/ Unsubscribe?</span></h1>
<p>Du får ${escapeHtml(w.sv)} från skolluft. Tryck på knappen för att sluta få dem.</p>
<p class="en" lang="en">You receive ${escapeHtml(w.en)} from skolluft. Press the button to stop them.</p>
<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Avsluta / Unsubscribe</button>
</form>`,
  )
}

/** After a successful POST, or a GET of a subscription that is already off. */
export function donePage(s: SubscriptionSummary, already: boolean): string {
  const w = what(s)
  const sv = already ? 'Prenumerationen var redan avslutad' : 'Prenumerationen är avslutad'
  const en = already ? 'The subscription had already ended' : 'You have been unsubscribed'
  return page(
    'Avslutad / Unsubscribed',
    `<h1>${sv} <span lang="en">/ ${en}</span></h1>
<p>Du får inte längre ${escapeHtml(w.sv)}. Du kan prenumerera igen i kartan när du är inloggad.</p>
<p class="en" lang="en">You will no longer receive ${escapeHtml(w.en)}. You can subscribe again on the map when logged in.</p>`,
  )
}

/** A link that is wrong, old (the key was rotated) or for a subscription that does not exist: one answer for all. */
export function invalidLinkPage(): string {
  return page(
    'Ogiltig länk / Invalid link',
    `<h1>Länken gäller inte <span lang="en">/ This link is not valid</span></h1>
<p>Avregistreringslänken är ofullständig eller gäller inte längre. Logga in i kartan för att ändra dina larm.</p>
<p class="en" lang="en">The unsubscribe link is incomplete or no longer valid. Log in on the map to change your alerts.</p>`,
  )
}
