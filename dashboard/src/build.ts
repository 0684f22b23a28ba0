import { createHash } from 'node:crypto'
import { extname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderIndexHtml } from './html.ts'

/**
 * Builds the dashboard in memory with esbuild at start-up (about a second), so the API serves it with
 * no build step, no files on disk and no CDN. Asset names carry a content hash (cache them forever);
 * '/' and '/index.html' are the page that names them (never cache it).
 */

export interface DashboardFile {
  readonly contentType: string
  readonly body: Buffer
  /** Strong validator, quoted (RFC 9110 §8.8.3). */
  readonly etag: string
}

export interface DashboardBundle {
  /** By URL path: '/', '/index.html', '/assets/app-<hash>.js', '/assets/app-<hash>.css', images. */
  readonly files: ReadonlyMap<string, DashboardFile>
}

export interface BuildDashboardOptions {
  /** Default true; false keeps names and adds linked source maps, for debugging. */
  readonly minify?: boolean
}

export class DashboardBuildError extends Error {
  readonly code = 'DASHBOARD_BUILD_FAILED'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DashboardBuildError'
  }
}

const CLIENT_ENTRY = fileURLToPath(new URL('./client/main.ts', import.meta.url))
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url))
/** esbuild needs an output directory to name files; nothing is written there. */
const VIRTUAL_OUT_DIR = resolve(PACKAGE_DIR, '.virtual-out')
/** Browsers of the last few years; the code uses ES2022 and nothing newer. */
const BROWSER_TARGETS = ['es2022', 'chrome100', 'edge100', 'firefox100', 'safari15.4']

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
}

/** The favicon: a circle in the EAQI "good" colour with a dark outline. */
const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="13" fill="#50CCAA" stroke="#15191d" stroke-width="3"/></svg>\n'

function file(path: string, body: Buffer): DashboardFile {
  const contentType = CONTENT_TYPES[extname(path)] ?? 'application/octet-stream'
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`
  return { contentType, body, etag }
}

/** URL path of an esbuild output (absolute, or relative to the working directory as in the metafile). */
function urlPath(outPath: string): string {
  return `/${relative(VIRTUAL_OUT_DIR, resolve(PACKAGE_DIR, outPath)).split('\\').join('/')}`
}

function hashName(name: string, ext: string, body: Buffer): string {
  return `/assets/${name}-${createHash('sha256').update(body).digest('hex').slice(0, 10).toUpperCase()}${ext}`
}

type Outputs = Record<string, { imports: readonly { path: string; kind: string }[] }>

/**
 * The chunks `script` imports statically, and theirs in turn, as URL paths: the page names them for preloading
 * (`<link rel="modulepreload">`), so the browser fetches them beside the entry instead of after it. Chunks reached
 * only by import() are left to load when asked.
 */
function staticImports(outputs: Outputs, script: string): string[] {
  const byUrl = new Map(Object.entries(outputs).map(([outPath, meta]) => [urlPath(outPath), meta]))
  const seen = new Set<string>()
  const visit = (url: string) => {
    for (const imported of byUrl.get(url)?.imports ?? []) {
      if (imported.kind !== 'import-statement') continue
      const path = urlPath(imported.path)
      if (seen.has(path)) continue
      seen.add(path)
      visit(path)
    }
  }
  visit(script)
  return [...seen]
}

export async function buildDashboard(options: BuildDashboardOptions = {}): Promise<DashboardBundle> {
  const minify = options.minify ?? true
  // Loaded on first use: a process that never serves the dashboard never loads esbuild.
  const esbuild = await import('esbuild')
  let result: Awaited<ReturnType<typeof esbuild.build<{ write: false; metafile: true }>>>
  try {
    result = await esbuild.build({
      entryPoints: { app: CLIENT_ENTRY },
      bundle: true,
      write: false,
      metafile: true,
      platform: 'browser',
      format: 'esm',
      target: BROWSER_TARGETS,
      absWorkingDir: PACKAGE_DIR,
      outdir: VIRTUAL_OUT_DIR,
      entryNames: 'assets/[name]-[hash]',
      // Code the map does not need (the report pages, app.ts) goes into chunks loaded by import() when asked.
      splitting: true,
      chunkNames: 'assets/[name]-[hash]',
      assetNames: 'assets/[name]-[hash]',
      publicPath: '/',
      loader: { '.png': 'file', '.svg': 'file' },
      minify,
      sourcemap: minify ? false : 'linked',
      charset: 'utf8',
      logLevel: 'silent',
    })
  } catch (error) {
    throw new DashboardBuildError('the dashboard bundle failed to build', { cause: error })
  }

  const files = new Map<string, DashboardFile>()
  for (const out of result.outputFiles) {
    const path = urlPath(out.path)
    files.set(path, file(path, Buffer.from(out.contents)))
  }
  let script: string | null = null
  let stylesheet: string | null = null
  const outputs = result.metafile.outputs
  for (const [outPath, meta] of Object.entries(outputs)) {
    // With splitting, a module loaded by import() is an entry point too: the page's script is main.ts's.
    if (meta.entryPoint === undefined || resolve(PACKAGE_DIR, meta.entryPoint) !== CLIENT_ENTRY) continue
    script = urlPath(outPath)
    if (meta.cssBundle !== undefined) stylesheet = urlPath(meta.cssBundle)
  }
  if (script === null || stylesheet === null || !files.has(script) || !files.has(stylesheet)) {
    throw new DashboardBuildError('the dashboard bundle has no script or no stylesheet')
  }
  const preload = staticImports(outputs, script)

  const icon = Buffer.from(ICON_SVG)
  const iconPath = hashName('icon', '.svg', icon)
  files.set(iconPath, file(iconPath, icon))

  const page = file('/index.html', Buffer.from(renderIndexHtml({ script, stylesheet, icon: iconPath, preload })))
  files.set('/', page)
  files.set('/index.html', page)
  return { files }
}
