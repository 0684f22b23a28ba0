/// <reference lib="dom" />
import 'leaflet/dist/leaflet.css'
import 'uplot/dist/uPlot.min.css'
import './styles.css'
import { createApi } from './api.ts'
import { startApp } from './app.ts'
import { connectLive } from './live.ts'

/** Browser entry point (bundled by ../build.ts). The only module with effects at load: it starts the page. */
function localStore(): Storage | null {
  try {
    return window.localStorage
  } catch {
    return null
  }
}

const root = document.getElementById('app')
if (root !== null) {
  startApp({ root, api: createApi(), storage: localStore(), connectLive }).catch((error: unknown) => {
    console.error('skolluft: the dashboard failed to start', error)
    root.textContent = 'Skolluft could not start. Reload the page to try again.'
  })
}
