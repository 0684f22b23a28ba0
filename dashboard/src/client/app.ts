/// <reference lib="dom" />
import { EAQI_POLLUTANTS, type EaqiPollutant, METRIC_INFO } from '@skolluft/core'
import { type AlertsDialog, createAlertsDialog } from './alerts-dialog.ts'
import { type Api, ApiError } from './api.ts'
import { createLoginForm, type LoginForm, roleLabel, userName } from './auth.ts'
import { type Bell, createBell } from './bell.ts'
import { mayManageBreaches } from './breaches.ts'
import { type BreachesView, createBreachesView } from './breaches-view.ts'
import { createDeliveriesView, type DeliveriesView } from './deliveries-view.ts'
import { h, uid } from './dom.ts'
import { formatAge, formatHour, formatNumber, kindName } from './format.ts'
import { createI18n, DEFAULT_LANG, type I18n, isLang } from './i18n.ts'
import { buildLegend } from './legend.ts'
import { bandLabel, createListView, type RowContext } from './list-view.ts'
import type { Live, LiveHandlers } from './live.ts'
import { createMapView, type MapView, type MarkerItem } from './map-view.ts'
import { LANG_NAMES, LANGS, type Lang } from './messages.ts'
import {
  allDemo,
  applyReading,
  clockOffsetMs,
  distinctSorted,
  type Filters,
  filterSites,
  keepNewerLatest,
  liveReading,
  type MarkerReading,
  NO_FILTERS,
  NO_READING,
  normalizeText,
  replayReading,
  type SiteState,
  type SortDir,
  type SortKey,
  siteFromFeature,
  sortSites,
  valueTime,
} from './model.ts'
import { createNotificationFeed, type NotificationFeed } from './notifications.ts'
import { createPanel, type Panel } from './panel.ts'
import type { BreachAccess } from './panel-breaches.ts'
import { createReplayBar, type ReplayBar, type ReplayPeriod } from './replay-bar.ts'
import { reportRequestOf } from './report-request.ts'
import {
  type ConfigData,
  ConfigSchema,
  FeatureCollectionSchema,
  parseFeatures,
  type ReadingData,
  type ReplayData,
  ReplaySchema,
  type SessionData,
  SessionSchema,
} from './schemas.ts'
import { createSetupForm, type SetupForm } from './setup.ts'
import { mayReadDeliveries, maySubscribe } from './subscriptions.ts'
import { createTexts, type Texts } from './texts.ts'

/**
 * The dashboard page: fetches config and session, shows the log-in form when the map is not public,
 * otherwise builds the map, list, filters, panel and replay bar around one state, and keeps it live
 * over socket.io. Rendering is coalesced per animation frame, so a burst of readings for many sites
 * redraws the canvas once.
 */

export const LANG_STORAGE_KEY = 'skolluft.lang'
/** Time between replay steps while playing: 24 hours in ~17 s, 7 days in under 2 minutes. */
export const REPLAY_STEP_MS = 700
/** Ages and staleness are re-evaluated this often (a value turns "out of date" after 3 h). */
export const AGE_REFRESH_MS = 30_000
/** device-status events in a burst (a gateway restart) lead to one refetch after this quiet time. */
export const STATUS_REFETCH_DELAY_MS = 2_000
/** Typing in the search box filters after this pause (re-rendering 10 000 rows per key is wasteful). */
export const SEARCH_DEBOUNCE_MS = 150
/** Search matches offered under the search box. */
export const SEARCH_RESULTS_MAX = 8
/** Used when GET /config is not there: the view is then fitted to the sites. */
const FALLBACK_CONFIG: ConfigData = { tileUrl: null, tileAttribution: null, center: [0, 0], zoom: 2 }
const MOBILE_QUERY = '(max-width: 640px)'

export interface AppEnv {
  readonly root: HTMLElement
  readonly api: Api
  /** localStorage, or null where it is not available (private mode, tests). */
  readonly storage: Pick<Storage, 'getItem' | 'setItem'> | null
  readonly connectLive: (handlers: LiveHandlers) => Live
}

/** What browser tests read: the marker state of the sites on the map now. */
export interface TestHook {
  readonly ready: boolean
  sites(): { id: string; band: number | null; value: number | null }[]
  readonly mode: 'live' | 'replay'
  readonly pollutant: EaqiPollutant
  /** The centre of a site's marker as drawn now, in viewport CSS pixels (for mouse clicks); null when not drawn. */
  markerPoint(id: string): { x: number; y: number } | null
}

function storedLang(storage: AppEnv['storage']): Lang {
  try {
    const value = storage?.getItem(LANG_STORAGE_KEY)
    return isLang(value) ? value : DEFAULT_LANG
  } catch {
    return DEFAULT_LANG
  }
}

function languageSwitch(i18n: I18n, texts: Texts, storage: AppEnv['storage']): HTMLElement {
  const id = uid('lang')
  const select = h('select', { id, 'data-testid': 'language-switch' })
  for (const lang of LANGS) {
    select.append(h('option', { value: lang, lang, selected: lang === i18n.lang() }, LANG_NAMES[lang]))
  }
  select.addEventListener('change', () => {
    if (!isLang(select.value)) return
    try {
      storage?.setItem(LANG_STORAGE_KEY, select.value)
    } catch {
      // Not persisted; the switch still works for this page.
    }
    i18n.setLang(select.value)
  })
  i18n.onChange((lang) => {
    select.value = lang
  })
  return h(
    'div',
    { class: 'lang-switch' },
    texts.bind(
      h('label', { for: id, class: 'visually-hidden' }),
      () => `${i18n.t('language')} / ${i18n.lang() === 'sv' ? 'Language' : 'Språk'}`,
    ),
    select,
  )
}

export async function startApp(env: AppEnv): Promise<void> {
  const i18n = createI18n(storedLang(env.storage))
  const texts = createTexts()
  document.documentElement.lang = i18n.lang()
  i18n.onChange((lang) => {
    document.documentElement.lang = lang
    texts.refresh()
  })
  const [configResult, sessionResult] = await Promise.allSettled([
    env.api.get('/api/v1/config', ConfigSchema),
    env.api.get('/api/v1/auth/session', SessionSchema),
  ])
  const config = configResult.status === 'fulfilled' ? configResult.value : FALLBACK_CONFIG
  const publicMap = config.publicMap ?? true
  const session: SessionData =
    sessionResult.status === 'fulfilled' ? sessionResult.value : { user: null, csrfToken: null, publicMap }
  const shared = { env, i18n, texts, config }
  if (!session.publicMap && session.user === null) showLoginOnly(shared, session)
  else startDashboard(shared, session)
}

interface Shared {
  readonly env: AppEnv
  readonly i18n: I18n
  readonly texts: Texts
  readonly config: ConfigData
}

function brand(shared: Shared): HTMLElement {
  const { texts, i18n } = shared
  return h(
    'div',
    { class: 'brand' },
    texts.bind(h('h1', {}), () => i18n.t('appTitle')),
    texts.bind(h('span', { class: 'subtitle' }), () => i18n.t('appSubtitle')),
  )
}

/** A private map and nobody logged in: the log-in form, and the first admin's setup while it is open. */
function showLoginOnly(shared: Shared, session: SessionData): void {
  const { env, i18n, texts } = shared
  const { publicMap } = session
  const form = createLoginForm({
    api: env.api,
    t: i18n.t,
    texts,
    publicMap,
    onLoggedIn: (next) => startDashboard(shared, next),
  })
  const main = h('main', { class: 'login-page', id: 'main' }, form.element)
  const setupOpen = texts.bind(h('button', { type: 'button', 'data-testid': 'setup-open', hidden: true }), () =>
    i18n.t('setupOpen'),
  )
  let setup: SetupForm | null = null
  function showLogin(): void {
    setup?.reset()
    main.replaceChildren(form.element)
    if (!setupOpen.hidden) setupOpen.focus()
    else form.focus()
  }
  function showSetup(): void {
    setup ??= createSetupForm({
      api: env.api,
      t: i18n.t,
      texts,
      publicMap,
      onDone: (next) => startDashboard(shared, next),
      onClosed: () => {
        setupOpen.hidden = true
      },
      onCancel: () => showLogin(),
    })
    form.reset()
    main.replaceChildren(setup.element)
    setup.focus()
  }
  setupOpen.hidden = session.setupOpen !== true
  setupOpen.addEventListener('click', () => showSetup())
  env.root.replaceChildren(
    h(
      'header',
      { class: 'topbar' },
      brand(shared),
      h('div', { class: 'top-controls' }, languageSwitch(i18n, texts, env.storage), setupOpen),
    ),
    main,
  )
  form.focus()
}

type View = 'map' | 'list' | 'breaches' | 'deliveries'

interface ReplayState {
  period: ReplayPeriod
  data: ReplayData | null
  index: number
  playing: boolean
  loading: boolean
  error: boolean
}

function startDashboard(shared: Shared, initialSession: SessionData): void {
  const { env, i18n, texts, config } = shared
  // `/?report=…` is a report page (report-view.ts), not the map.
  const reportRequest = reportRequestOf(window.location.search)
  if (reportRequest !== null) {
    // The report pages are a chunk of their own (build.ts splitting), loaded only here: the map does not carry them.
    import('./report-view.ts')
      .then(({ startReportPage }) =>
        startReportPage({
          root: env.root,
          api: env.api,
          i18n,
          texts,
          request: reportRequest,
          brand: brand(shared),
          languageSwitch: languageSwitch(i18n, texts, env.storage),
          now: () => Date.now(),
        }),
      )
      .catch((error: unknown) => {
        console.error('skolluft: the report page failed to load', error)
        env.root.textContent = i18n.t('reportLoadError', {
          detail: error instanceof Error ? error.message : String(error),
        })
      })
    return
  }
  const { t } = i18n
  const collator = () => new Intl.Collator(i18n.lang(), { numeric: true })
  let session = initialSession
  /** No admin yet: "create the first administrator" is offered next to "log in". */
  let setupOpen = initialSession.setupOpen === true

  // ---- state -------------------------------------------------------------------------------------
  let pollutant: EaqiPollutant = 'pm25'
  let view: View = 'map'
  let filters: Filters = NO_FILTERS
  let sites: SiteState[] = []
  const byId = new Map<string, SiteState>()
  let filtered: SiteState[] = []
  let sort: { key: SortKey; dir: SortDir } = { key: 'name', dir: 'ascending' }
  let offsetMs = 0
  let replay: ReplayState | null = null
  let replayPeriod: ReplayPeriod = '24'
  let replayTimer: ReturnType<typeof setInterval> | null = null
  let ready = false
  let listDirty = true
  let returnFocus: HTMLElement | null = null
  let loadSeq = 0
  let replaySeq = 0

  const now = () => Date.now() + offsetMs
  const pollutantLabel = () => t(`metric_${pollutant}`)
  const kindLabel = (kind: string) => kindName(t, kind)

  function readingOf(site: SiteState): MarkerReading {
    if (replay !== null) {
      return replay.data === null ? NO_READING : replayReading(replay.data, site.id, replay.index, pollutant)
    }
    return liveReading(site, pollutant, now())
  }

  function statusText(site: SiteState): string {
    const parts: string[] = []
    if (site.openBreaches > 0) {
      parts.push(t(site.openBreaches === 1 ? 'statusBreachOne' : 'statusBreach', { n: site.openBreaches }))
    }
    if (site.health === null) return parts.join(' · ') || '–'
    if (site.health.devices === 0) parts.push(t('statusNoDevices'))
    if (site.health.offline > 0) parts.push(t('statusOffline', { n: site.health.offline }))
    if (site.health.suspect > 0) {
      parts.push(t(site.health.suspect === 1 ? 'statusSuspectOne' : 'statusSuspect', { n: site.health.suspect }))
    }
    if (parts.length === 0) parts.push(t('statusOk'))
    return parts.join(' · ')
  }

  function rowContext(): RowContext {
    const lang = i18n.lang()
    return {
      t,
      pollutantLabel: pollutantLabel(),
      reading: readingOf,
      formatValue: (v) => formatNumber(lang, v),
      age: (site) => {
        if (replay !== null) return null
        const time = valueTime(site, pollutant)
        return time === null ? null : formatAge(lang, now() - time)
      },
      kindLabel,
      status: statusText,
    }
  }

  /** "Breaches (3)": the open incidents over the sites on the map (the GeoJSON's counts). */
  function breachesLabel(): string {
    const n = sites.reduce((sum, site) => sum + site.openBreaches, 0)
    return n > 0 ? t('viewBreachesCount', { n }) : t('viewBreaches')
  }

  function breachAccess(): BreachAccess {
    const user = session.user
    return {
      loggedIn: user !== null,
      manage: mayManageBreaches(user?.role),
      csrf: session.csrfToken,
      me: user === null ? null : { id: user.id, name: userName(user) },
    }
  }

  /** The breaches view is out of date: refetched now if shown, otherwise when it is next shown. */
  function breachesChanged(): void {
    if (view === 'breaches') breachesView.load()
    else breachesDirty = true
  }

  // ---- shell -------------------------------------------------------------------------------------
  const pollutantId = uid('pollutant')
  const pollutantSelect = h('select', { id: pollutantId, 'data-testid': 'pollutant-select' })
  for (const p of EAQI_POLLUTANTS) {
    pollutantSelect.append(texts.bind(h('option', { value: p }), () => t(`metric_${p}`)))
  }
  const viewMapButton = texts.bind(
    h('button', { type: 'button', 'data-testid': 'view-map', 'aria-pressed': 'true' }),
    () => t('viewMap'),
  )
  const viewListButton = texts.bind(
    h('button', { type: 'button', 'data-testid': 'view-list', 'aria-pressed': 'false' }),
    () => t('viewList'),
  )
  const viewBreachesButton = texts.bind(
    h('button', { type: 'button', 'data-testid': 'view-breaches', 'aria-pressed': 'false' }),
    () => breachesLabel(),
  )
  /** Staff and admins only (deliveries:read): the alert outbox. */
  const viewDeliveriesButton = texts.bind(
    h('button', { type: 'button', 'data-testid': 'view-deliveries', 'aria-pressed': 'false', hidden: true }),
    () => t('viewDeliveries'),
  )
  const viewToggle = h(
    'div',
    { class: 'segmented', role: 'group', 'data-testid': 'view-toggle' },
    viewMapButton,
    viewListButton,
    viewBreachesButton,
    viewDeliveriesButton,
  )
  texts.bind(viewToggle, () => t('view'), 'aria-label')
  const filtersToggle = texts.bind(
    h('button', {
      type: 'button',
      class: 'filters-toggle',
      'data-testid': 'filters-toggle',
      'aria-expanded': 'false',
      'aria-controls': 'filters',
    }),
    () => t('filters'),
  )
  const authBox = h('div', { class: 'auth', 'data-testid': 'auth' })

  const connectionBanner = texts.bind(
    h('div', { class: 'banner banner-warn', role: 'status', 'data-testid': 'connection-banner', hidden: true }),
    () => t('connLost'),
  )
  const demoBanner = texts.bind(
    h('div', { class: 'banner banner-demo', 'data-testid': 'demo-banner', hidden: true }),
    () => t('demoBanner'),
  )
  const tilesBanner = texts.bind(
    h('div', { class: 'banner banner-info', 'data-testid': 'tiles-banner', hidden: true }),
    () => t('tilesUnavailable'),
  )
  const retryButton = texts.bind(h('button', { type: 'button', 'data-testid': 'retry' }), () => t('retry'))
  const loadErrorText = texts.bind(h('span', {}), () => t('loadError'))
  const loadError = h(
    'div',
    { class: 'banner banner-error', role: 'alert', 'data-testid': 'load-error', hidden: true },
    loadErrorText,
    ' ',
    retryButton,
  )

  // Filters
  const kindId = uid('kind')
  const kindSelect = h('select', { id: kindId, 'data-testid': 'filter-kind' })
  const localityId = uid('locality')
  const localitySelect = h('select', { id: localityId, 'data-testid': 'filter-locality' })
  const breachesBox = h('input', { type: 'checkbox', 'data-testid': 'filter-breaches' })
  const offlineBox = h('input', { type: 'checkbox', 'data-testid': 'filter-offline' })
  const searchId = uid('search')
  const searchHintId = uid('search-hint')
  const searchInput = h('input', {
    type: 'search',
    id: searchId,
    autocomplete: 'off',
    'data-testid': 'search-input',
    'aria-describedby': searchHintId,
    'aria-controls': 'search-results',
  })
  const searchResults = h('ul', { class: 'search-results', id: 'search-results', 'data-testid': 'search-results' })
  const resultCount = h('p', { class: 'result-count', 'data-testid': 'result-count', 'aria-live': 'polite' })
  const filtersSection = h(
    'section',
    { class: 'filters', id: 'filters', 'data-testid': 'filters' },
    texts.bind(h('h2', { class: 'visually-hidden' }), () => t('filters')),
    h(
      'div',
      { class: 'field' },
      texts.bind(h('label', { for: kindId }), () => t('filterKind')),
      kindSelect,
    ),
    h(
      'div',
      { class: 'field' },
      texts.bind(h('label', { for: localityId }), () => t('filterLocality')),
      localitySelect,
    ),
    h(
      'div',
      { class: 'field search' },
      texts.bind(h('label', { for: searchId }), () => t('search')),
      searchInput,
      texts.bind(h('span', { id: searchHintId, class: 'visually-hidden' }), () => t('searchHint')),
      searchResults,
    ),
    h(
      'label',
      { class: 'check' },
      breachesBox,
      texts.bind(h('span'), () => t('filterBreaches')),
    ),
    h(
      'label',
      { class: 'check' },
      offlineBox,
      texts.bind(h('span'), () => t('filterOffline')),
    ),
    resultCount,
  )

  const mapEl = h('div', { class: 'map', id: 'map', 'data-testid': 'map', role: 'region' })
  texts.bind(mapEl, () => t('mapLabel'), 'aria-label')
  const list = createListView({ onOpen: (id) => openSite(id), onSort: (key) => setSort(key) })
  list.element.hidden = true
  const panel: Panel = createPanel({
    api: env.api,
    t,
    lang: () => i18n.lang(),
    now,
    loggedIn: () => session.user !== null,
    breachAccess,
    onBreachesChanged: () => breachesChanged(),
    onClose: () => closePanel(),
    onDetails: (site) => {
      list.update(site, rowContext())
      scheduleMarkers()
    },
  })
  const replayBar: ReplayBar = createReplayBar({
    t,
    texts,
    onLive: () => goLive(),
    onPeriod: (p) => setReplayPeriod(p),
    onPlayPause: () => playPause(),
    onSeek: (i) => seek(i),
  })
  const breachesView: BreachesView = createBreachesView({
    api: env.api,
    t,
    lang: () => i18n.lang(),
    siteName: (id) => byId.get(id)?.name ?? null,
    me: () => breachAccess().me,
    onOpen: (id) => openSite(id),
  })
  breachesView.element.hidden = true
  let breachesDirty = true
  const deliveriesView: DeliveriesView = createDeliveriesView({ api: env.api, t, lang: () => i18n.lang() })
  deliveriesView.element.hidden = true
  const alertsDialog: AlertsDialog = createAlertsDialog({
    api: env.api,
    t,
    lang: () => i18n.lang(),
    user: () => session.user,
    csrf: () => session.csrfToken,
    sites: () => {
      const c = collator()
      return [...sites].sort((a, b) => c.compare(a.name, b.name)).map((site) => ({ id: site.id, name: site.name }))
    },
    siteName: (id) => byId.get(id)?.name ?? null,
  })
  const feed: NotificationFeed = createNotificationFeed({
    api: env.api,
    csrf: () => session.csrfToken,
    onChange: (state) => bell.show(state),
  })
  const bell: Bell = createBell({
    t,
    lang: () => i18n.lang(),
    feed,
    onOpenSite: (id) => openSite(id),
  })
  const skipLink = texts.bind(h('a', { class: 'skip-link', href: '#site-list' }), () => t('skipToList'))
  const loginPopover = h('div', { class: 'popover', 'data-testid': 'login-popover', hidden: true })
  const setupPopover = h('div', { class: 'popover', 'data-testid': 'setup-popover', hidden: true })

  env.root.replaceChildren(
    skipLink,
    h(
      'header',
      { class: 'topbar' },
      brand(shared),
      h(
        'div',
        { class: 'top-controls' },
        h(
          'div',
          { class: 'field inline' },
          texts.bind(h('label', { for: pollutantId }), () => t('pollutant')),
          pollutantSelect,
        ),
        viewToggle,
        filtersToggle,
        languageSwitch(i18n, texts, env.storage),
        bell.element,
        authBox,
        // Last: where the bar wraps, the report link goes to the next line, not the log-out under the bell's list.
        texts.bind(
          h('a', { href: '/?report=municipality', class: 'button-link', 'data-testid': 'municipal-report-link' }),
          () => t('reportMunicipalLink'),
        ),
      ),
    ),
    loginPopover,
    setupPopover,
    alertsDialog.element,
    h('div', { class: 'banners' }, connectionBanner, loadError, demoBanner, tilesBanner),
    filtersSection,
    h(
      'main',
      { class: 'content', id: 'main' },
      h('div', { class: 'views' }, mapEl, list.element, breachesView.element, deliveriesView.element),
      panel.element,
    ),
    replayBar.element,
  )

  const mapView: MapView = createMapView({
    container: mapEl,
    center: config.center,
    zoom: config.zoom,
    tileUrl: config.tileUrl,
    tileAttribution: config.tileAttribution ?? null,
    onSelect: (id) => openSite(id),
    onTileFailure: () => {
      tilesBanner.hidden = false
    },
  })
  const mobile = window.matchMedia(MOBILE_QUERY)

  function renderLegend(): void {
    const previous = mapEl.querySelector('details.legend')
    const open = previous instanceof HTMLDetailsElement ? previous.open : !mobile.matches
    mapView.setLegend(buildLegend(t, i18n.lang(), pollutant, pollutantLabel(), open))
  }
  renderLegend()

  // ---- rendering ---------------------------------------------------------------------------------
  let markersFrame = 0
  function scheduleMarkers(): void {
    if (markersFrame !== 0) return
    markersFrame = requestAnimationFrame(() => {
      markersFrame = 0
      mapView.setMarkers(
        filtered.map((site): MarkerItem => {
          const reading = readingOf(site)
          const offline = (site.health?.offline ?? 0) > 0
          return {
            id: site.id,
            lat: site.lat,
            lon: site.lon,
            band: reading.band,
            offline,
            suspect: !offline && (site.health?.suspect ?? 0) > 0,
            breach: site.openBreaches > 0,
            title:
              reading.value === null
                ? `${site.name}: ${t('bandNone')}`
                : `${site.name}: ${formatNumber(i18n.lang(), reading.value)} ${METRIC_INFO[pollutant].unit} (${reading.band ?? '–'} ${bandLabel(t, reading.band)})`,
          }
        }),
      )
    })
  }

  function renderList(): void {
    if (view !== 'list') {
      listDirty = true
      return
    }
    listDirty = false
    list.render(sortSites(filtered, sort.key, sort.dir, sortContext()), rowContext(), sort)
  }

  function sortContext() {
    return {
      collator: collator(),
      reading: readingOf,
      time: (site: SiteState) => (replay === null ? valueTime(site, pollutant) : null),
      kindLabel,
    }
  }

  function renderCount(): void {
    resultCount.textContent = t('shownCount', { shown: filtered.length, total: sites.length })
  }

  function renderSearchResults(): void {
    const query = normalizeText(filters.query)
    searchResults.replaceChildren()
    if (query === '') return
    for (const site of filtered.slice(0, SEARCH_RESULTS_MAX)) {
      const button = h(
        'button',
        { type: 'button', 'data-testid': 'search-result', 'data-site-id': site.id },
        site.name,
        site.locality === null ? '' : ` · ${site.locality}`,
      )
      button.addEventListener('click', () => openSite(site.id))
      searchResults.append(h('li', {}, button))
    }
  }

  function applyFilters(): void {
    filtered = filterSites(sites, filters)
    renderCount()
    renderSearchResults()
    scheduleMarkers()
    renderList()
  }

  function renderFilterOptions(): void {
    const c = collator()
    const kinds = distinctSorted(
      sites.map((s) => s.kind),
      c,
    )
    const localities = distinctSorted(
      sites.map((s) => s.locality),
      c,
    )
    const keepKind = filters.kind
    const keepLocality = filters.locality
    kindSelect.replaceChildren(h('option', { value: '' }, t('kindAll')))
    for (const k of kinds) kindSelect.append(h('option', { value: k, selected: k === keepKind }, kindLabel(k)))
    localitySelect.replaceChildren(h('option', { value: '' }, t('localityAll')))
    for (const l of localities) {
      localitySelect.append(h('option', { value: l, selected: l === keepLocality }, l))
    }
    const kind = keepKind !== null && kinds.includes(keepKind) ? keepKind : null
    const locality = keepLocality !== null && localities.includes(keepLocality) ? keepLocality : null
    if (kind !== keepKind || locality !== keepLocality) filters = { ...filters, kind, locality }
  }

  function renderAuth(): void {
    authBox.replaceChildren()
    const user = session.user
    if (user === null) {
      if (!session.publicMap) return
      const open = h('button', { type: 'button', 'data-testid': 'login-open' }, t('loginOpen'))
      open.addEventListener('click', () => openLogin())
      authBox.append(open)
      if (setupOpen) {
        const setup = h('button', { type: 'button', 'data-testid': 'setup-open' }, t('setupOpen'))
        setup.addEventListener('click', () => openSetup())
        authBox.append(setup)
      }
      return
    }
    const logout = h('button', { type: 'button', 'data-testid': 'logout' }, t('logout'))
    logout.addEventListener('click', () => doLogout())
    let alerts: HTMLButtonElement | null = null
    if (maySubscribe(user.role)) {
      const button = h(
        'button',
        { type: 'button', 'data-testid': 'alerts-open', 'aria-haspopup': 'dialog' },
        t('alertsOpen'),
      )
      button.addEventListener('click', () => alertsDialog.open(button))
      alerts = button
    }
    authBox.append(
      h(
        'span',
        { class: 'user', 'data-testid': 'user-name' },
        t('loggedInAs', { name: userName(user), role: roleLabel(t, user.role) }),
      ),
      alerts ?? '',
      logout,
    )
  }

  function replayLabel(): string {
    if (replay === null || replay.data === null) return t('liveShowing')
    const hour = replay.data.hours[replay.index]
    return hour === undefined ? '' : t('replayShowing', { time: formatHour(i18n.lang(), Date.parse(hour)) })
  }

  function renderReplayBar(): void {
    replayBar.show({
      mode: replay === null ? 'live' : 'replay',
      period: replay?.period ?? replayPeriod,
      loading: replay?.loading ?? false,
      error: replay?.error ?? false,
      hours: replay?.data?.hours.length ?? Number(replayPeriod) + 1,
      index: replay?.index ?? 0,
      playing: replay?.playing ?? false,
      label: replayLabel(),
    })
  }

  // ---- data --------------------------------------------------------------------------------------
  async function loadSites(): Promise<void> {
    loadSeq += 1
    const seq = loadSeq
    try {
      const collection = await env.api.get('/api/v1/sites', FeatureCollectionSchema)
      if (seq !== loadSeq) return
      const { sites: features, invalid } = parseFeatures(collection.features)
      if (invalid > 0) console.warn(`skolluft: ${invalid} site(s) left out: unexpected shape`)
      offsetMs = clockOffsetMs(features, Date.now())
      const next = features.map(siteFromFeature)
      for (const site of next) {
        const old = byId.get(site.id)
        if (old === undefined) continue
        keepNewerLatest(site, old)
        if (site.devices === null) site.devices = old.devices
      }
      sites = next
      byId.clear()
      for (const site of sites) byId.set(site.id, site)
      loadError.hidden = true
      demoBanner.hidden = !allDemo(sites)
      renderFilterOptions()
      applyFilters()
      viewBreachesButton.textContent = breachesLabel()
      breachesChanged()
      const open = panel.currentId()
      if (open !== null) {
        const site = byId.get(open)
        if (site === undefined) closePanel()
        else panel.refresh(site)
      }
      if (!ready) {
        mapView.fitAll(sites)
        // Alert messages link to `/?site=<id>`: open that site's panel once the map has loaded.
        const linked = new URLSearchParams(window.location.search).get('site')
        if (linked !== null) openSite(linked)
        requestAnimationFrame(() => {
          ready = true
          document.body.dataset.ready = 'true'
          // bench/map-browser.ts reads this mark: the time from navigation to a usable map.
          performance.mark('skolluft-ready')
        })
      }
    } catch (error) {
      if (seq !== loadSeq) return
      // A private map whose session ended: start over at the log-in form.
      if (error instanceof ApiError && error.status === 401 && !session.publicMap) {
        window.location.reload()
        return
      }
      console.warn('skolluft: loading sites failed', error)
      loadError.hidden = false
    }
  }

  function applyReadings(readings: readonly ReadingData[]): void {
    const openId = panel.currentId()
    let changed = false
    const ctx = view === 'list' && replay === null ? rowContext() : null
    for (const reading of readings) {
      const site = byId.get(reading.site)
      if (site === undefined || !applyReading(site, reading)) continue
      changed = true
      if (ctx !== null) list.update(site, ctx)
      if (site.id === openId) panel.refresh(site)
    }
    if (changed && replay === null) scheduleMarkers()
  }

  // ---- panel -------------------------------------------------------------------------------------
  function openSite(id: string): void {
    const site = byId.get(id)
    if (site === undefined) return
    if (panel.currentId() === null) {
      returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null
    }
    panel.open(site, pollutant)
    if (mobile.matches) {
      // On a phone the open filters and the bottom sheet together would leave no map.
      filtersToggle.setAttribute('aria-expanded', 'false')
      filtersSection.classList.remove('expanded')
    }
    mapView.setSelected(id)
    live?.setSite(id)
    document.body.classList.add('panel-open')
    mapView.invalidateSize()
    if (view === 'map') mapView.reveal(site.lat, site.lon, mobile.matches ? sheetOverMap() : 0)
    panel.focus()
  }

  /** How much of the map the phone's bottom sheet covers, px. */
  function sheetOverMap(): number {
    const panelTop = panel.element.getBoundingClientRect().top
    return Math.max(0, mapEl.getBoundingClientRect().bottom - panelTop)
  }

  function closePanel(): void {
    if (panel.currentId() === null) return
    const id = panel.currentId()
    panel.close()
    mapView.setSelected(null)
    live?.setSite(null)
    document.body.classList.remove('panel-open')
    mapView.invalidateSize()
    const target = returnFocus
    returnFocus = null
    if (target?.isConnected) target.focus()
    else if (id !== null && view === 'list' && list.focusRow(id)) return
    else if (id !== null && view === 'breaches' && breachesView.focusRow(id)) return
    else mapEl.focus()
  }

  // ---- replay ------------------------------------------------------------------------------------
  function stopTimer(): void {
    if (replayTimer !== null) clearInterval(replayTimer)
    replayTimer = null
  }

  function startTimer(): void {
    stopTimer()
    replayTimer = setInterval(() => {
      if (replay === null || replay.data === null) return
      if (replay.index >= replay.data.hours.length - 1) {
        replay.playing = false
        stopTimer()
      } else {
        replay.index += 1
      }
      replayChanged()
    }, REPLAY_STEP_MS)
  }

  function replayChanged(): void {
    renderReplayBar()
    scheduleMarkers()
    renderList()
  }

  async function loadReplay(state: ReplayState, keepIndex: boolean): Promise<void> {
    replaySeq += 1
    const seq = replaySeq
    state.loading = true
    state.error = false
    renderReplayBar()
    try {
      const data = await env.api.get(
        `/api/v1/replay?metric=${encodeURIComponent(pollutant)}&hours=${state.period}`,
        ReplaySchema,
      )
      if (seq !== replaySeq || replay !== state) return
      state.data = data
      state.loading = false
      state.index = keepIndex ? Math.min(state.index, data.hours.length - 1) : state.playing ? 0 : state.index
      if (state.playing) startTimer()
    } catch (error) {
      if (seq !== replaySeq || replay !== state) return
      console.warn('skolluft: loading the replay failed', error)
      state.loading = false
      state.error = true
      state.playing = false
      stopTimer()
    }
    replayChanged()
  }

  function startReplay(playing: boolean, index: number): void {
    replay = { period: replayPeriod, data: null, index, playing, loading: true, error: false }
    void loadReplay(replay, !playing)
    replayChanged()
  }

  function goLive(): void {
    stopTimer()
    replaySeq += 1
    replay = null
    replayChanged()
  }

  function setReplayPeriod(period: ReplayPeriod): void {
    replayPeriod = period
    if (replay === null) {
      renderReplayBar()
      return
    }
    stopTimer()
    replay.period = period
    replay.index = 0
    void loadReplay(replay, false)
  }

  function playPause(): void {
    if (replay === null) {
      startReplay(true, 0)
      return
    }
    if (replay.data === null) return
    replay.playing = !replay.playing
    if (replay.playing) {
      if (replay.index >= replay.data.hours.length - 1) replay.index = 0
      startTimer()
    } else {
      stopTimer()
    }
    replayChanged()
  }

  function seek(index: number): void {
    if (replay === null) {
      startReplay(false, index)
      return
    }
    replay.playing = false
    stopTimer()
    replay.index = index
    replayChanged()
  }

  // ---- auth --------------------------------------------------------------------------------------
  let loginForm: LoginForm | null = null
  function openLogin(): void {
    closeSetup(null)
    if (loginForm === null) {
      loginForm = createLoginForm({
        api: env.api,
        t,
        texts,
        publicMap: true,
        onLoggedIn: (next) => {
          session = { ...next, publicMap: session.publicMap }
          // The header first (it now has "log out"), then the focus goes there.
          accessChanged()
          closeLogin()
        },
        onCancel: () => closeLogin(),
      })
      loginPopover.append(loginForm.element)
    }
    loginPopover.hidden = false
    loginForm.focus()
  }

  function closeLogin(): void {
    if (loginPopover.hidden) return
    loginPopover.hidden = true
    loginForm?.reset()
    authBox.querySelector('button')?.focus()
  }

  let setupForm: SetupForm | null = null
  function openSetup(): void {
    if (!loginPopover.hidden) {
      loginPopover.hidden = true
      loginForm?.reset()
    }
    if (setupForm === null) {
      setupForm = createSetupForm({
        api: env.api,
        t,
        texts,
        publicMap: session.publicMap,
        onDone: (next) => {
          session = { ...next, publicMap: session.publicMap }
          setupOpen = false
          accessChanged()
          closeSetup('logout')
        },
        onClosed: () => {
          // The form stays open with its message; the header stops offering the setup.
          setupOpen = false
          renderAuth()
        },
        onCancel: () => closeSetup('setup-open'),
      })
      setupPopover.append(setupForm.element)
    }
    setupPopover.hidden = false
    setupForm.focus()
  }

  /** Closes the setup form; the focus goes back to the header button named (test id), or stays. */
  function closeSetup(focus: 'setup-open' | 'logout' | null): void {
    if (setupPopover.hidden) return
    setupPopover.hidden = true
    setupForm?.reset()
    if (focus === null) return
    const target =
      authBox.querySelector<HTMLButtonElement>(`[data-testid="${focus}"]`) ?? authBox.querySelector('button')
    target?.focus()
  }

  function accessChanged(): void {
    renderAuth()
    alertsDialog.close()
    viewDeliveriesButton.hidden = !mayReadDeliveries(session.user?.role)
    deliveriesView.clear()
    if (view === 'deliveries' && viewDeliveriesButton.hidden) setView('map')
    if (session.user === null) feed.stop()
    else feed.start()
    void loadSites()
    const open = panel.currentId()
    const site = open === null ? undefined : byId.get(open)
    if (site !== undefined) panel.open(site, pollutant)
  }

  function doLogout(): void {
    env.api
      .post('/api/v1/auth/logout', {}, null, session.csrfToken)
      .catch((error: unknown) => {
        // The session may be gone already (expired, 401): the page logs out either way.
        console.warn('skolluft: log-out request failed', error)
      })
      .finally(() => {
        session = { user: null, csrfToken: null, publicMap: session.publicMap }
        // A private map shows nothing to a logged-out visitor: start over at the log-in form.
        if (!session.publicMap) {
          window.location.reload()
          return
        }
        accessChanged()
      })
  }

  // ---- input -------------------------------------------------------------------------------------
  function setView(next: View): void {
    view = next
    viewMapButton.setAttribute('aria-pressed', String(next === 'map'))
    viewListButton.setAttribute('aria-pressed', String(next === 'list'))
    viewBreachesButton.setAttribute('aria-pressed', String(next === 'breaches'))
    viewDeliveriesButton.setAttribute('aria-pressed', String(next === 'deliveries'))
    mapEl.hidden = next !== 'map'
    list.element.hidden = next !== 'list'
    breachesView.element.hidden = next !== 'breaches'
    deliveriesView.element.hidden = next !== 'deliveries'
    document.body.dataset.view = next
    if (next === 'map') mapView.invalidateSize()
    else if (next === 'list' && listDirty) renderList()
    else if (next === 'breaches' && breachesDirty) {
      breachesDirty = false
      breachesView.load()
    } else if (next === 'deliveries') {
      // The outbox changes all the time: fetched each time the view is shown.
      deliveriesView.load()
    }
  }

  function setSort(key: SortKey): void {
    sort = { key, dir: sort.key === key && sort.dir === 'ascending' ? 'descending' : 'ascending' }
    renderList()
    list.element.querySelector<HTMLButtonElement>(`[data-testid="sort-${key}"]`)?.focus()
  }

  pollutantSelect.addEventListener('change', () => {
    const next = EAQI_POLLUTANTS.find((p) => p === pollutantSelect.value)
    if (next === undefined) return
    pollutant = next
    renderLegend()
    scheduleMarkers()
    renderList()
    if (replay !== null) void loadReplay(replay, true)
  })
  viewMapButton.addEventListener('click', () => setView('map'))
  viewListButton.addEventListener('click', () => setView('list'))
  viewBreachesButton.addEventListener('click', () => setView('breaches'))
  viewDeliveriesButton.addEventListener('click', () => setView('deliveries'))
  filtersToggle.addEventListener('click', () => {
    const expanded = filtersToggle.getAttribute('aria-expanded') !== 'true'
    filtersToggle.setAttribute('aria-expanded', String(expanded))
    filtersSection.classList.toggle('expanded', expanded)
  })
  kindSelect.addEventListener('change', () => {
    filters = { ...filters, kind: kindSelect.value === '' ? null : kindSelect.value }
    applyFilters()
  })
  localitySelect.addEventListener('change', () => {
    filters = { ...filters, locality: localitySelect.value === '' ? null : localitySelect.value }
    applyFilters()
  })
  breachesBox.addEventListener('change', () => {
    filters = { ...filters, breachesOnly: breachesBox.checked }
    applyFilters()
  })
  offlineBox.addEventListener('change', () => {
    filters = { ...filters, offlineOnly: offlineBox.checked }
    applyFilters()
  })
  let searchTimer: ReturnType<typeof setTimeout> | null = null
  function applySearch(): void {
    if (searchTimer !== null) clearTimeout(searchTimer)
    searchTimer = null
    if (filters.query === searchInput.value) return
    filters = { ...filters, query: searchInput.value }
    applyFilters()
  }
  searchInput.addEventListener('input', () => {
    if (searchTimer !== null) clearTimeout(searchTimer)
    searchTimer = setTimeout(applySearch, SEARCH_DEBOUNCE_MS)
  })
  searchInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault()
      applySearch()
      const first = filtered[0]
      if (filters.query.trim() !== '' && first !== undefined) openSite(first.id)
    } else if (e.key === 'ArrowDown') {
      applySearch()
      const first = searchResults.querySelector('button')
      if (first !== null) {
        e.preventDefault()
        first.focus()
      }
    }
  })
  searchResults.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return
    const buttons = [...searchResults.querySelectorAll('button')]
    const active = document.activeElement
    const at = active instanceof HTMLButtonElement ? buttons.indexOf(active) : -1
    const next = e.key === 'ArrowDown' ? buttons[at + 1] : at <= 0 ? searchInput : buttons[at - 1]
    if (next !== undefined) {
      e.preventDefault()
      next.focus()
    }
  })
  retryButton.addEventListener('click', () => void loadSites())
  skipLink.addEventListener('click', (e) => {
    e.preventDefault()
    setView('list')
    list.element.focus()
  })
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return
    if (!loginPopover.hidden) {
      closeLogin()
      return
    }
    if (!setupPopover.hidden) {
      closeSetup('setup-open')
      return
    }
    if (panel.currentId() !== null) {
      e.preventDefault()
      closePanel()
    }
  })
  mobile.addEventListener('change', () => mapView.invalidateSize())

  i18n.onChange(() => {
    renderLegend()
    renderAuth()
    renderFilterOptions()
    renderCount()
    renderSearchResults()
    renderReplayBar()
    listDirty = true
    renderList()
    breachesView.render()
    deliveriesView.render()
    alertsDialog.relabel()
    bell.relabel()
    panel.relabel()
    scheduleMarkers()
  })

  window.setInterval(() => {
    if (view === 'list' && replay === null) list.refreshAges(rowContext())
    const open = panel.currentId()
    const site = open === null ? undefined : byId.get(open)
    if (site !== undefined) panel.refresh(site)
    scheduleMarkers()
  }, AGE_REFRESH_MS)

  // ---- test hook ---------------------------------------------------------------------------------
  const hook: TestHook = Object.freeze({
    get ready() {
      return ready
    },
    sites: () =>
      filtered.map((site) => {
        const reading = readingOf(site)
        return { id: site.id, band: reading.band, value: reading.value }
      }),
    get mode() {
      return replay === null ? 'live' : 'replay'
    },
    get pollutant() {
      return pollutant
    },
    markerPoint: (id: string) => {
      const point = mapView.markerPoint(id)
      if (point === null) return null
      const box = mapEl.getBoundingClientRect()
      return { x: box.left + point.x, y: box.top + point.y }
    },
  })
  Object.defineProperty(window, '__skolluft', { value: hook, configurable: true })

  // ---- start -------------------------------------------------------------------------------------
  let live: Live | null = null
  renderAuth()
  viewDeliveriesButton.hidden = !mayReadDeliveries(session.user?.role)
  if (session.user !== null) feed.start()
  renderReplayBar()
  setView('map')
  void loadSites().then(() => {
    live = env.connectLive({
      onReadings: applyReadings,
      onDeviceStatus: scheduleStatusRefetch,
      onConnection: (connected, reconnected) => {
        connectionBanner.hidden = connected
        if (connected && reconnected) {
          void loadSites()
          feed.refresh()
        }
      },
    })
    const open = panel.currentId()
    if (open !== null) live.setSite(open)
  })

  let statusTimer: ReturnType<typeof setTimeout> | null = null
  function scheduleStatusRefetch(): void {
    if (statusTimer !== null) return
    statusTimer = setTimeout(() => {
      statusTimer = null
      void loadSites()
    }, STATUS_REFETCH_DELAY_MS)
  }
}
