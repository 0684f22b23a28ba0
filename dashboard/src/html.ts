/**
 * The one HTML page. Everything visible is built by the script, so the page has no inline script and
 * no inline style (the CSP allows neither), and the text starts in the right language. The <noscript>
 * line is the only text before the script runs, in both languages.
 */
export interface PageAssets {
  readonly script: string
  readonly stylesheet: string
  readonly icon: string
  /** Module chunks the script imports statically, fetched beside it. */
  readonly preload?: readonly string[]
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)
}

export function renderIndexHtml(assets: PageAssets): string {
  const attr = escapeHtml
  return `<!doctype html>
<html lang="sv">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="description" content="Luften vid skolor och förskolor: karta med mätvärden i realtid.">
<title>Skolluft</title>
<link rel="icon" href="${attr(assets.icon)}" type="image/svg+xml">
<link rel="stylesheet" href="${attr(assets.stylesheet)}">
${(assets.preload ?? []).map((path) => `<link rel="modulepreload" href="${attr(path)}">\n`).join('')}<script type="module" src="${attr(assets.script)}"></script>
</head>
<body>
<noscript><p>Skolluft behöver JavaScript för kartan. / Skolluft needs JavaScript for the map.</p></noscript>
<div id="app" data-testid="app"></div>
</body>
</html>
`
}
