/**
 * Generates the demo registry `infra/demo/lund-demo-sites.geojson`: about 150 INVENTED schools and
 * preschools spread over the real localities of Lund municipality, plus one invented urban background
 * site in central Lund (DEMO_BACKGROUND), so the map, the simulator, the API and the site reports (a
 * school against the nearest urban background: its local increment) have something realistic to show
 * before a municipality loads its real sites.
 *
 *   npx tsx scripts/generate-demo-sites.ts           write the file
 *   npx tsx scripts/generate-demo-sites.ts --check   exit 1 if the committed file differs from the output
 *
 * Deterministic: a fixed seed drives a small PRNG, so the committed file only changes when this script does.
 * Every name is made up and says "demo"; no street addresses are invented (address is null).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { createRng, ID_PATTERN, parseSitesFile, type SCHOOL_STAGES, Site, siteFeature } from '@skolluft/core'

type Stage = (typeof SCHOOL_STAGES)[number]

/** Changing the seed moves every marker and renames every site; keep it unless that is the point. */
export const DEMO_SEED = 1281 // Lund's municipality code (SCB), for want of a better number
export const DEMO_MUNICIPALITY = 'Lund'
export const DEMO_SITES_PATH = fileURLToPath(new URL('../infra/demo/lund-demo-sites.geojson', import.meta.url))

/** Markers closer than this would sit on top of each other at city zoom on the map. */
const MIN_SEPARATION_M = 150
/** 5 decimals of a degree ≈ 1 m: far finer than the scatter, and keeps the file small. */
const COORDINATE_DECIMALS = 5

interface Area {
  /** Locality (tätort) the sites belong to; districts of Lund city all have locality "Lund". */
  readonly locality: string
  /** Slug used in the site id: `demo-{slug}-{f|s}-{nnn}`. */
  readonly slug: string
  /** District name, only to spread Lund city's sites over its residential areas. */
  readonly district: string
  /** Approximate centre, WGS84 (read off a map, rounded; good to a few hundred metres). */
  readonly lat: number
  readonly lon: number
  /** Scatter radius around the centre, metres. */
  readonly radiusM: number
  readonly sites: number
  /** Whether an upper-secondary school (gymnasium) is plausible here. */
  readonly gymnasium?: boolean
}

/**
 * Lund city (most sites, over its districts) and the other localities of the municipality. Counts are
 * loosely proportional to population; the centres are approximate and only need to land in the right
 * neighbourhood.
 */
export const DEMO_AREAS: readonly Area[] = [
  {
    locality: 'Lund',
    slug: 'lund',
    district: 'Centrum',
    lat: 55.7036,
    lon: 13.1936,
    radiusM: 500,
    sites: 8,
    gymnasium: true,
  },
  {
    locality: 'Lund',
    slug: 'lund',
    district: 'Väster',
    lat: 55.7015,
    lon: 13.1765,
    radiusM: 500,
    sites: 7,
    gymnasium: true,
  },
  { locality: 'Lund', slug: 'lund', district: 'Klostergården', lat: 55.6912, lon: 13.1765, radiusM: 600, sites: 9 },
  { locality: 'Lund', slug: 'lund', district: 'Järnåkra', lat: 55.695, lon: 13.2, radiusM: 500, sites: 7 },
  { locality: 'Lund', slug: 'lund', district: 'Råbylund', lat: 55.6975, lon: 13.22, radiusM: 500, sites: 6 },
  { locality: 'Lund', slug: 'lund', district: 'Linero', lat: 55.701, lon: 13.235, radiusM: 600, sites: 9 },
  {
    locality: 'Lund',
    slug: 'lund',
    district: 'Östra Torn',
    lat: 55.713,
    lon: 13.24,
    radiusM: 600,
    sites: 8,
    gymnasium: true,
  },
  { locality: 'Lund', slug: 'lund', district: 'Öster', lat: 55.7085, lon: 13.21, radiusM: 500, sites: 6 },
  { locality: 'Lund', slug: 'lund', district: 'Norra Fäladen', lat: 55.7245, lon: 13.202, radiusM: 650, sites: 10 },
  { locality: 'Lund', slug: 'lund', district: 'Nöbbelöv', lat: 55.719, lon: 13.174, radiusM: 550, sites: 7 },
  { locality: 'Lund', slug: 'lund', district: 'Gunnesbo', lat: 55.73, lon: 13.16, radiusM: 500, sites: 6 },
  { locality: 'Lund', slug: 'lund', district: 'Värpinge', lat: 55.7045, lon: 13.156, radiusM: 450, sites: 4 },
  { locality: 'Lund', slug: 'lund', district: 'Brunnshög', lat: 55.7195, lon: 13.228, radiusM: 600, sites: 8 },
  { locality: 'Lund', slug: 'lund', district: 'Vallkärratorn', lat: 55.734, lon: 13.19, radiusM: 450, sites: 4 },
  { locality: 'Dalby', slug: 'dalby', district: 'Dalby', lat: 55.6653, lon: 13.3475, radiusM: 800, sites: 12 },
  {
    locality: 'Södra Sandby',
    slug: 'sodra-sandby',
    district: 'Södra Sandby',
    lat: 55.7183,
    lon: 13.3417,
    radiusM: 750,
    sites: 11,
  },
  { locality: 'Veberöd', slug: 'veberod', district: 'Veberöd', lat: 55.6338, lon: 13.4928, radiusM: 700, sites: 9 },
  { locality: 'Genarp', slug: 'genarp', district: 'Genarp', lat: 55.5995, lon: 13.3992, radiusM: 600, sites: 7 },
  { locality: 'Stångby', slug: 'stangby', district: 'Stångby', lat: 55.7507, lon: 13.1985, radiusM: 550, sites: 6 },
  {
    locality: 'Torna Hällestad',
    slug: 'torna-hallestad',
    district: 'Torna Hällestad',
    lat: 55.668,
    lon: 13.419,
    radiusM: 350,
    sites: 3,
  },
  { locality: 'Revinge', slug: 'revinge', district: 'Revinge', lat: 55.7095, lon: 13.455, radiusM: 350, sites: 3 },
]

/**
 * The one urban background site of the demo (kind `background`, registry.ts): roof level in central Lund,
 * at least MIN_SEPARATION_M from the school markers, so the demo's site reports compare a school with its
 * urban background. Every demo site is within MAX_BACKGROUND_DISTANCE_KM (20 km, registry.ts) of it except
 * some in Veberöd (20.2–21.1 km): their reports show the other case, "no background site within 20 km".
 * An invented point: it marks no real station or building. Added after the schools and preschools and drawn from no random number, so it leaves every
 * other site (and its id, name and position) as it was. Id letter `b` for bakgrund.
 */
export const DEMO_BACKGROUND = {
  id: 'demo-lund-b-001',
  name: 'Lund urban bakgrund (demo)',
  locality: 'Lund',
  lat: 55.7047,
  lon: 13.191,
} as const

/** Invented names from nature words. Each is used once, behind "Demoförskolan"/"Demoskolan" and before "(demo)". */
const NAME_WORDS = [
  'Lärkan',
  'Ekbacken',
  'Solrosen',
  'Humlan',
  'Myran',
  'Blåklockan',
  'Vitsippan',
  'Smultronet',
  'Kotten',
  'Ekorren',
  'Igelkotten',
  'Trasten',
  'Svalan',
  'Talltitan',
  'Blåmesen',
  'Domherren',
  'Rödhaken',
  'Sparven',
  'Staren',
  'Kajan',
  'Ugglan',
  'Göken',
  'Hackspetten',
  'Tranan',
  'Storken',
  'Vipan',
  'Sädesärlan',
  'Gärdsmygen',
  'Nötväckan',
  'Steglitsen',
  'Linden',
  'Almen',
  'Asken',
  'Boken',
  'Björken',
  'Rönnen',
  'Hasseln',
  'Lönnen',
  'Sälgen',
  'Enen',
  'Granen',
  'Tallen',
  'Pilen',
  'Aspen',
  'Körsbäret',
  'Fläderbusken',
  'Hagtornet',
  'Slånbäret',
  'Nyponet',
  'Kaprifolen',
  'Maskrosen',
  'Prästkragen',
  'Kornblomman',
  'Vallmon',
  'Klövern',
  'Linnean',
  'Gullvivan',
  'Viol',
  'Tussilagon',
  'Ängssyran',
  'Mossan',
  'Ormbunken',
  'Lavskogen',
  'Svampen',
  'Blåbäret',
  'Lingonet',
  'Hallonet',
  'Krusbäret',
  'Vinbäret',
  'Äpplet',
  'Päronet',
  'Plommonet',
  'Kastanjen',
  'Ollonet',
  'Frökapseln',
  'Fröet',
  'Knoppen',
  'Grodden',
  'Stjälken',
  'Bladet',
  'Bäcken',
  'Dammen',
  'Ängen',
  'Hagen',
  'Lunden',
  'Kullen',
  'Dungen',
  'Gläntan',
  'Stigen',
  'Källan',
  'Åsen',
  'Dalen',
  'Backen',
  'Vången',
  'Tegen',
  'Fältet',
  'Gärdet',
  'Diket',
  'Stenen',
  'Klippan',
  'Snäckan',
  'Fjärilen',
  'Nyckelpigan',
  'Trollsländan',
  'Gräshoppan',
  'Syrsan',
  'Snigeln',
  'Daggmasken',
  'Spindeln',
  'Biet',
  'Haren',
  'Räven',
  'Grävlingen',
  'Rådjuret',
  'Älgen',
  'Bävern',
  'Uttern',
  'Mullvaden',
  'Sorken',
  'Fladdermusen',
  'Grodan',
  'Paddan',
  'Ödlan',
  'Gäddan',
  'Abborren',
  'Mörten',
  'Ålen',
  'Krabban',
  'Sjöstjärnan',
  'Maneten',
  'Molnet',
  'Regnbågen',
  'Solstrålen',
  'Månskäran',
  'Stjärnan',
  'Vinden',
  'Daggdroppen',
  'Snöflingan',
  'Norrskenet',
  'Gryningen',
  'Skymningen',
  'Vågen',
  'Stranden',
  'Sanddynen',
  'Tången',
  'Vassen',
  'Näckrosen',
  'Kaveldunet',
  'Säven',
  'Starren',
  'Ljungen',
  'Blåbärsriset',
  'Kvisten',
  'Barken',
  'Roten',
  'Stubben',
  'Vedboden',
  'Kompassen',
  'Lyktan',
  'Ankaret',
] as const

/** Stage combinations a Swedish compulsory school typically has; gymnasium only where `gymnasium` is set. */
const STAGE_SETS: readonly (readonly Stage[])[] = [
  ['fklass', 'f-3', '4-6'],
  ['fklass', 'f-3', '4-6'],
  ['fklass', 'f-3'],
  ['fklass', 'f-3', '4-6', '7-9'],
  ['4-6', '7-9'],
  ['7-9'],
]

function shuffle<T>(items: readonly T[], rng: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rng() * (i + 1))
    const a = out[i] as T
    out[i] = out[j] as T
    out[j] = a
  }
  return out
}

const EARTH_RADIUS_M = 6_371_000

function offset(lat: number, lon: number, northM: number, eastM: number): { lat: number; lon: number } {
  const dLat = (northM / EARTH_RADIUS_M) * (180 / Math.PI)
  const dLon = (eastM / (EARTH_RADIUS_M * Math.cos((lat * Math.PI) / 180))) * (180 / Math.PI)
  return { lat: lat + dLat, lon: lon + dLon }
}

function distanceM(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const north = ((a.lat - b.lat) * Math.PI * EARTH_RADIUS_M) / 180
  const east = ((a.lon - b.lon) * Math.PI * EARTH_RADIUS_M * Math.cos((a.lat * Math.PI) / 180)) / 180
  return Math.hypot(north, east)
}

function round(value: number): number {
  const f = 10 ** COORDINATE_DECIMALS
  return Math.round(value * f) / f
}

export function generateDemoSites(seed: number = DEMO_SEED): Site[] {
  const rng = createRng(seed)
  const words = shuffle(NAME_WORDS, rng)
  const total = DEMO_AREAS.reduce((sum, area) => sum + area.sites, 0)
  if (words.length < total) throw new Error(`need ${total} name words, have ${words.length}`)
  const placed: { lat: number; lon: number }[] = []
  const counters = new Map<string, number>()
  const sites: Site[] = []
  for (const area of DEMO_AREAS) {
    // About two thirds preschools in every area, as in Swedish municipalities.
    const schools = Math.round(area.sites / 3)
    const kinds = shuffle(
      Array.from({ length: area.sites }, (_, i) => (i < schools ? 'school' : 'preschool') as 'school' | 'preschool'),
      rng,
    )
    let gymnasiumPlaced = false
    for (const kind of kinds) {
      let position = { lat: area.lat, lon: area.lon }
      for (let attempt = 0; attempt < 200; attempt += 1) {
        // Uniform over the disc: radius ∝ √u.
        const r = area.radiusM * Math.sqrt(rng())
        const angle = rng() * 2 * Math.PI
        position = offset(area.lat, area.lon, r * Math.cos(angle), r * Math.sin(angle))
        if (placed.every((p) => distanceM(p, position) >= MIN_SEPARATION_M)) break
      }
      placed.push(position)
      const key = `${area.slug}-${kind === 'preschool' ? 'f' : 's'}`
      const n = (counters.get(key) ?? 0) + 1
      counters.set(key, n)
      const word = words[sites.length] as string
      let stages: Stage[] = []
      if (kind === 'school') {
        if (area.gymnasium && !gymnasiumPlaced) {
          stages = ['gymnasium']
          gymnasiumPlaced = true
        } else {
          stages = [...(STAGE_SETS[Math.floor(rng() * STAGE_SETS.length)] ?? ['fklass', 'f-3'])]
        }
      }
      sites.push(
        Site.parse({
          id: `demo-${key}-${String(n).padStart(3, '0')}`,
          name: `${kind === 'preschool' ? 'Demoförskolan' : 'Demoskolan'} ${word} (demo)`,
          kind,
          stages,
          address: null,
          locality: area.locality,
          municipality: DEMO_MUNICIPALITY,
          lat: round(position.lat),
          lon: round(position.lon),
          demo: true,
        }),
      )
    }
  }
  const background = { lat: DEMO_BACKGROUND.lat, lon: DEMO_BACKGROUND.lon }
  if (!placed.every((p) => distanceM(p, background) >= MIN_SEPARATION_M)) {
    throw new Error(`${DEMO_BACKGROUND.id} is within ${MIN_SEPARATION_M} m of another demo site; move it`)
  }
  sites.push(
    Site.parse({
      id: DEMO_BACKGROUND.id,
      name: DEMO_BACKGROUND.name,
      kind: 'background',
      stages: [],
      address: null,
      locality: DEMO_BACKGROUND.locality,
      municipality: DEMO_MUNICIPALITY,
      lat: DEMO_BACKGROUND.lat,
      lon: DEMO_BACKGROUND.lon,
      demo: true,
    }),
  )
  for (const site of sites) {
    if (!ID_PATTERN.test(site.id)) throw new Error(`generated id ${site.id} does not match ID_PATTERN`)
  }
  return sites
}

/**
 * The `GET /api/v1/sites` shape without the live status (`latest`, `index`, `health`, `breaches`; core
 * geojson.ts), one feature per line so a change
 * shows as a readable diff.
 */
export function demoSitesGeoJson(sites: readonly Site[]): string {
  const lines = sites.map((site) => {
    const { latest: _l, index: _i, health: _h, breaches: _b, ...properties } = siteFeature(site, null).properties
    return JSON.stringify({ ...siteFeature(site, null), properties })
  })
  return `{"type":"FeatureCollection","features":[\n${lines.join(',\n')}\n]}\n`
}

async function main(argv: readonly string[]): Promise<number> {
  const sites = generateDemoSites()
  const text = demoSitesGeoJson(sites)
  // The file must import as it is meant to be imported.
  const check = parseSitesFile(text, 'geojson')
  if (check.errors.length > 0 || check.sites.length !== sites.length) {
    console.error('generated file does not import cleanly:', check.errors)
    return 1
  }
  const preschools = sites.filter((s) => s.kind === 'preschool').length
  const schools = sites.filter((s) => s.kind === 'school').length
  if (argv.includes('--check')) {
    const committed = await readFile(DEMO_SITES_PATH, 'utf8').catch(() => '')
    if (committed !== text) {
      console.error(`${DEMO_SITES_PATH} is out of date; run: npx tsx scripts/generate-demo-sites.ts`)
      return 1
    }
    console.log(`${DEMO_SITES_PATH} is up to date (${sites.length} sites)`)
    return 0
  }
  await writeFile(DEMO_SITES_PATH, text)
  console.log(
    `wrote ${sites.length} demo sites (${preschools} preschools, ${schools} schools, ${sites.length - preschools - schools} urban background) to ${DEMO_SITES_PATH}`,
  )
  return 0
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      console.error(error)
      process.exitCode = 1
    },
  )
}
