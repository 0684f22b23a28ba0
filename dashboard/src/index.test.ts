import { beforeAll, describe, expect, it } from 'vitest'
import { escapeHtml } from './html.ts'
import { buildDashboard, type DashboardBundle } from './index.ts'

/**
 * Most JavaScript the map may load at start (its script and the chunks it imports statically), minified. Today
 * ~425 kB (Leaflet ~150, uPlot ~50, socket.io ~45, zod/mini ~20, the app); all of zod (what an unmarked import of
 * @skolluft/core pulls in) would add ~450 kB and fail this. The report pages (~45 kB) load only when asked.
 */
const MAX_SCRIPT_BYTES = 450_000

/** The page's module script and the chunks it names for preloading (its static imports). */
function initialScripts(html: string): { script: string; preload: string[] } {
  const script = /<script type="module" src="([^"]+)"/.exec(html)?.[1] ?? ''
  const preload = [...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((m) => m[1] ?? '')
  return { script, preload }
}

describe('buildDashboard', () => {
  let bundle: DashboardBundle
  let html: string

  beforeAll(async () => {
    bundle = await buildDashboard()
    html = bundle.files.get('/')?.body.toString('utf8') ?? ''
  })

  it('serves the same page at / and /index.html', () => {
    expect(html).toContain('<div id="app"')
    expect(bundle.files.get('/index.html')).toBe(bundle.files.get('/'))
    expect(bundle.files.get('/')?.contentType).toBe('text/html; charset=utf-8')
  })

  it('references only files the bundle holds', () => {
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '')
    const { script, preload } = initialScripts(html)
    // Icon, stylesheet, script and its preloaded chunks.
    expect(refs.length).toBe(3 + preload.length)
    for (const ref of refs) {
      expect(ref.startsWith('/assets/'), ref).toBe(true)
      expect(bundle.files.has(ref), ref).toBe(true)
    }
    for (const chunk of preload) {
      expect(bundle.files.get(chunk)?.contentType, chunk).toBe('text/javascript; charset=utf-8')
    }
    const style = refs.find((r) => r.endsWith('.css'))
    expect(bundle.files.get(script ?? '')?.contentType).toBe('text/javascript; charset=utf-8')
    expect(bundle.files.get(style ?? '')?.contentType).toBe('text/css; charset=utf-8')
  })

  it('has no inline script, inline style or event handler attribute (the CSP forbids them)', () => {
    for (const tag of html.match(/<script\b[^>]*>[\s\S]*?<\/script>/g) ?? []) {
      expect(tag).toMatch(/^<script type="module" src="\/assets\/[^"]+\.js"><\/script>$/)
    }
    expect(html).not.toMatch(/<style\b/i)
    expect(html).not.toMatch(/\sstyle=/i)
    expect(html).not.toMatch(/\son[a-z]+=/i)
  })

  it('names assets by content and gives every file a quoted ETag', () => {
    const etags = new Set<string>()
    for (const [path, file] of bundle.files) {
      expect(file.etag).toMatch(/^"[\w-]+"$/)
      if (path !== '/index.html') etags.add(file.etag)
      if (path.startsWith('/assets/')) expect(path).toMatch(/^\/assets\/[\w-]+-[A-Z0-9]{8,}\.[a-z]+$/)
    }
    expect(etags.size).toBe(bundle.files.size - 1)
  })

  it('resolves every url() in the stylesheet to a file of the bundle', () => {
    const css = [...bundle.files].find(([p]) => p.endsWith('.css'))?.[1].body.toString('utf8') ?? ''
    const urls = [...css.matchAll(/url\(\s*"?([^")]+)"?\s*\)/g)].map((m) => m[1] ?? '')
    expect(urls.length).toBeGreaterThan(0)
    for (const url of urls) {
      // data: URIs and Leaflet's old-IE `behavior: url(#default#VML)` are not files.
      if (url.startsWith('data:') || url.startsWith('#')) continue
      expect(bundle.files.has(url), url).toBe(true)
    }
  })

  it('keeps the script small (no full zod in the browser)', () => {
    const { script, preload } = initialScripts(html)
    const sizes = [script, ...preload].map((path) => bundle.files.get(path)?.body.length ?? Number.POSITIVE_INFINITY)
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(MAX_SCRIPT_BYTES)
  })

  it('leaves the report pages out of what the map loads at start (they are a chunk loaded by import())', () => {
    const { script, preload } = initialScripts(html)
    const initial = new Set([script, ...preload])
    const text = (path: string) => bundle.files.get(path)?.body.toString('utf8') ?? ''
    // A test id only the report pages render (report-view.ts), as the minified code keeps it.
    const marker = 'report-print'
    expect([...initial].some((path) => text(path).includes(marker))).toBe(false)
    const lazy = [...bundle.files.keys()].filter((p) => p.endsWith('.js') && !initial.has(p))
    expect(lazy.some((path) => text(path).includes(marker))).toBe(true)
  })

  it('escapes what it puts in attributes', () => {
    expect(escapeHtml('"/><script>&\'')).toBe('&quot;/&gt;&lt;script&gt;&amp;&#39;')
  })
})
