/// <reference lib="dom" />
import { h, uid } from './dom.ts'
import type { Translate } from './i18n.ts'
import type { Texts } from './texts.ts'

/**
 * The time control under the map: "Live", a period (24 h or 7 days of hourly means), play/pause and
 * a slider over the hours. The app owns the state and the timer; this only shows it and reports input.
 */

export const REPLAY_PERIODS = ['24', '168'] as const
export type ReplayPeriod = (typeof REPLAY_PERIODS)[number]

export interface ReplayBarState {
  readonly mode: 'live' | 'replay'
  readonly period: ReplayPeriod
  readonly loading: boolean
  readonly error: boolean
  readonly hours: number
  readonly index: number
  readonly playing: boolean
  /** "Hourly means Mon 29 Nov 14:00" or "Latest values (live)". */
  readonly label: string
}

export interface ReplayBarOptions {
  readonly t: Translate
  readonly texts: Texts
  readonly onLive: () => void
  readonly onPeriod: (period: ReplayPeriod) => void
  readonly onPlayPause: () => void
  readonly onSeek: (index: number) => void
}

export interface ReplayBar {
  readonly element: HTMLElement
  show(state: ReplayBarState): void
}

export function createReplayBar(options: ReplayBarOptions): ReplayBar {
  const { t, texts } = options
  const live = texts.bind(h('button', { type: 'button', class: 'live-button', 'data-testid': 'replay-live' }), () =>
    t('replayLive'),
  )
  const periodId = uid('replay-period')
  const period = h('select', { id: periodId, 'data-testid': 'replay-period' })
  for (const p of REPLAY_PERIODS) period.append(texts.bind(h('option', { value: p }), () => t(`replay_${p}`)))
  const play = h('button', { type: 'button', class: 'play-button', 'data-testid': 'replay-play' })
  const playIcon = h('span', { 'aria-hidden': 'true' })
  play.append(playIcon)
  const sliderId = uid('replay-slider')
  const slider = h('input', {
    type: 'range',
    id: sliderId,
    min: '0',
    max: '24',
    step: '1',
    value: '24',
    'data-testid': 'replay-slider',
  })
  const label = h('output', { for: sliderId, class: 'replay-time', 'data-testid': 'replay-time', 'aria-live': 'off' })
  const element = h(
    'section',
    { class: 'replay-bar', 'data-testid': 'replay-controls' },
    texts.bind(h('h2', { class: 'visually-hidden' }), () => t('replayTitle')),
    live,
    texts.bind(h('label', { for: periodId, class: 'visually-hidden' }), () => t('replayPeriod')),
    period,
    play,
    texts.bind(h('label', { for: sliderId, class: 'visually-hidden' }), () => t('replaySlider')),
    slider,
    label,
  )
  let playing = false

  live.addEventListener('click', () => options.onLive())
  period.addEventListener('change', () => {
    const value = REPLAY_PERIODS.find((p) => p === period.value)
    if (value !== undefined) options.onPeriod(value)
  })
  play.addEventListener('click', () => options.onPlayPause())
  slider.addEventListener('input', () => options.onSeek(Number(slider.value)))

  return {
    element,
    show(state) {
      playing = state.playing
      live.setAttribute('aria-pressed', String(state.mode === 'live'))
      period.value = state.period
      playIcon.textContent = playing ? '❚❚' : '▶'
      play.setAttribute('aria-label', playing ? t('replayPause') : t('replayPlay'))
      play.title = playing ? t('replayPause') : t('replayPlay')
      play.setAttribute('aria-pressed', String(playing))
      slider.max = String(Math.max(0, state.hours - 1))
      slider.value = String(state.mode === 'live' ? Math.max(0, state.hours - 1) : state.index)
      slider.disabled = state.loading
      slider.setAttribute('aria-valuetext', state.label)
      label.textContent = state.loading ? t('replayLoading') : state.error ? t('replayError') : state.label
      element.classList.toggle('is-replay', state.mode === 'replay')
    },
  }
}
