import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { siteFeatureCollection } from './geojson.ts'
import { ID_PATTERN } from './ids.ts'
import { Site } from './registry.ts'
import { detectCsvDelimiter, detectSitesFormat, parseCsvRecords, parseSitesFile } from './site-import.ts'

const HEADER = 'id,name,kind,stages,address,locality,municipality,lat,lon,demo'

describe('parseSitesFile, CSV', () => {
  it('reads every column and applies the Site defaults', () => {
    const csv = [
      HEADER,
      'ekbacken,Ekbackens förskola,preschool,,,Lund,Lund,55.7047,13.191,false',
      'solskolan,Solskolan,school,f-3;4-6,Skolgatan 1,Dalby,Lund,55.665,13.348,1',
    ].join('\n')
    const { sites, errors } = parseSitesFile(csv, 'csv')
    expect(errors).toEqual([])
    expect(sites).toEqual([
      {
        id: 'ekbacken',
        name: 'Ekbackens förskola',
        kind: 'preschool',
        stages: [],
        address: null,
        locality: 'Lund',
        municipality: 'Lund',
        lat: 55.7047,
        lon: 13.191,
        demo: false,
      },
      {
        id: 'solskolan',
        name: 'Solskolan',
        kind: 'school',
        stages: ['f-3', '4-6'],
        address: 'Skolgatan 1',
        locality: 'Dalby',
        municipality: 'Lund',
        lat: 55.665,
        lon: 13.348,
        demo: true,
      },
    ])
  })

  it('keeps commas, doubled quotes and line breaks inside quoted fields, with CRLF line ends', () => {
    const csv = [
      HEADER,
      'a-1,"Skolan ""Eken"", Lund",school,"fklass;f-3","Storgatan 2,\r\nlgh 3",Lund,Lund,55.70,13.19,',
      'a-2,Plain,preschool,,,,Lund,55.71,13.20,',
      '',
    ].join('\r\n')
    const { sites, errors } = parseSitesFile(csv, 'csv')
    expect(errors).toEqual([])
    expect(sites.map((s) => [s.id, s.name, s.address, s.stages])).toEqual([
      ['a-1', 'Skolan "Eken", Lund', 'Storgatan 2,\r\nlgh 3', ['fklass', 'f-3']],
      ['a-2', 'Plain', null, []],
    ])
  })

  it('tolerates a UTF-8 byte order mark before the header', () => {
    const csv = `\uFEFF${HEADER}\nbom-1,Förskolan Å,preschool,,,,Lund,55.7,13.2,\n`
    const { sites, errors } = parseSitesFile(csv, 'csv')
    expect(errors).toEqual([])
    expect(sites[0]?.id).toBe('bom-1')
  })

  it('reads a semicolon file from a Swedish spreadsheet, with decimal commas, any column order and extra columns', () => {
    const csv = [
      'Namn i katalog;lon;lat;Name;ID;Kind;Municipality;Stages;Demo',
      'x;13,191;55,7047;Förskolan Lärkan;larkan;förskola;Lund;;0',
      'y;13,35;55,665;Skolan Eken;eken;school;Lund;"F-klass;f-3";ja',
    ].join('\r\n')
    const { sites, errors } = parseSitesFile(csv, 'csv')
    expect(errors).toEqual([])
    expect(sites.map((s) => [s.id, s.kind, s.lat, s.lon, s.stages, s.demo])).toEqual([
      ['larkan', 'preschool', 55.7047, 13.191, [], false],
      ['eken', 'school', 55.665, 13.35, ['fklass', 'f-3'], true],
    ])
  })

  it('reads the Swedish words for an urban background station as kind background', () => {
    const csv = [
      HEADER,
      'tak-1,Takstation,Urban bakgrund,,,,Lund,55.7,13.2,',
      'tak-2,Taket,bakgrundsstation,,,,Lund,55.7,13.2,',
      'tak-3,Referens,referensstation,,,,Lund,55.7,13.2,',
    ].join('\n')
    const { sites, errors } = parseSitesFile(csv, 'csv')
    expect(errors).toEqual([])
    expect(sites.map((s) => s.kind)).toEqual(['background', 'background', 'background'])
  })

  it('reports each bad row with its line number and still imports the good rows', () => {
    const csv = [
      HEADER,
      'good-1,Good one,preschool,,,,Lund,55.7,13.2,',
      'Bad Id,Bad id,preschool,,,,Lund,55.7,13.2,',
      'good-2,"Spans',
      'two lines",school,,,,Lund,55.7,13.2,',
      'bad-kind,Bad kind,kindergarten,,,,Lund,55.7,13.2,',
      'bad-lat,Bad lat,school,,,,Lund,95,13.2,',
      'no-lat,No lat,school,,,,Lund,,13.2,',
      'bad-demo,Bad demo,school,,,,Lund,55.7,13.2,maybe',
      'bad-stage,Bad stage,school,f-9,,,Lund,55.7,13.2,',
      'good-1,Same id again,preschool,,,,Lund,55.7,13.2,',
      'extra,Extra field,preschool,,,,Lund,55.7,13.2,,surplus',
    ].join('\n')
    const { sites, errors } = parseSitesFile(csv, 'csv')
    expect(sites.map((s) => s.id)).toEqual(['good-1', 'good-2'])
    expect(errors.map((e) => e.row)).toEqual([3, 6, 7, 8, 9, 10, 11, 12])
    const message = (row: number) => errors.find((e) => e.row === row)?.message ?? ''
    expect(message(3)).toMatch(/^row 3: id: /)
    expect(message(6)).toMatch(/kind/)
    expect(message(7)).toMatch(/lat/)
    expect(message(8)).toMatch(/lat/)
    expect(message(9)).toMatch(/demo/)
    expect(message(10)).toMatch(/stages/)
    expect(message(11)).toMatch(/duplicate id "good-1" \(first used at row 2\)/)
    expect(message(12)).toMatch(/11 fields but the header has 10/)
  })

  it('refuses a file that lacks required columns with one error naming them all', () => {
    const { sites, errors } = parseSitesFile('id,name,latitude\nx,X,55.7\n', 'csv')
    expect(sites).toEqual([])
    expect(errors).toHaveLength(1)
    expect(errors[0]?.row).toBe(1)
    expect(errors[0]?.message).toMatch(/missing required columns kind, municipality, lon/)
  })

  it('refuses a repeated column, an empty file and an unclosed quote', () => {
    expect(parseSitesFile(`${HEADER},lat\n`, 'csv').errors[0]?.message).toMatch(/"lat" appears twice/)
    expect(parseSitesFile('\n\n', 'csv').errors).toEqual([{ row: 0, message: expect.stringMatching(/empty/) }])
    const unclosed = parseSitesFile(`${HEADER}\nq,"never closed,school,,,,Lund,55.7,13.2,\n`, 'csv')
    expect(unclosed.sites).toEqual([])
    expect(unclosed.errors).toEqual([{ row: 2, message: expect.stringMatching(/never closed/) }])
  })

  it('accepts optional columns being absent', () => {
    const { sites, errors } = parseSitesFile('lat,lon,id,name,kind,municipality\n55.7,13.2,x,X,school,Lund', 'csv')
    expect(errors).toEqual([])
    expect(sites).toEqual([
      Site.parse({ id: 'x', name: 'X', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.2 }),
    ])
  })
})

describe('CSV building blocks', () => {
  it('splits records per RFC 4180 and numbers them by their first line', () => {
    expect(parseCsvRecords('a,"b\nc",d\r\ne,f\rg', ',')).toEqual([
      { line: 1, fields: ['a', 'b\nc', 'd'] },
      { line: 3, fields: ['e', 'f'] },
      { line: 4, fields: ['g'] },
    ])
  })

  it('detects the delimiter from the header line, ignoring quoted text', () => {
    expect(detectCsvDelimiter('id,name,kind\n1;2;3;4')).toBe(',')
    expect(detectCsvDelimiter('id;name;"a,b,c"\n')).toBe(';')
    expect(detectCsvDelimiter('id\tname\tkind')).toBe('\t')
  })
})

const school = Site.parse({
  id: 'demo-dalby-s-001',
  name: 'Demoskolan Ekbacken (demo)',
  kind: 'school',
  stages: ['fklass', 'f-3'],
  address: null,
  locality: 'Dalby',
  municipality: 'Lund',
  lat: 55.6651,
  lon: 13.3482,
  demo: true,
})
const preschool = Site.parse({
  id: 'demo-lund-f-001',
  name: 'Demoförskolan Lärkan (demo)',
  kind: 'preschool',
  locality: 'Lund',
  municipality: 'Lund',
  lat: 55.7047,
  lon: 13.191,
  demo: true,
})

describe('parseSitesFile, GeoJSON', () => {
  it('round-trips the FeatureCollection the API serves, ignoring latest values', () => {
    const served = siteFeatureCollection(
      [school, preschool],
      new Map([
        [
          'demo-lund-f-001',
          {
            ts: '2026-11-30T07:00:00.000Z',
            values: { pm25: 7 },
            times: { pm25: '2026-11-30T07:00:00.000Z' },
            age_s: 3,
          },
        ],
      ]),
    )
    const { sites, errors } = parseSitesFile(JSON.stringify(served), 'geojson')
    expect(errors).toEqual([])
    expect(sites).toEqual([school, preschool])
  })

  it('takes the id from properties.id when the feature has none, and ignores unknown properties', () => {
    const text = JSON.stringify({
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          geometry: { type: 'Point', coordinates: [13.2, 55.7, 12] },
          properties: { id: 'p-id', name: 'P', kind: 'school', municipality: 'Lund', health: { ok: true } },
        },
      ],
    })
    const { sites, errors } = parseSitesFile(text, 'geojson')
    expect(errors).toEqual([])
    expect(sites).toEqual([
      Site.parse({ id: 'p-id', name: 'P', kind: 'school', municipality: 'Lund', lat: 55.7, lon: 13.2 }),
    ])
  })

  it('reports invalid features by index and still imports the valid ones', () => {
    const ok = siteFeatureCollection([preschool], new Map()).features[0]
    const text = JSON.stringify({
      type: 'FeatureCollection',
      features: [
        { ...ok, geometry: { type: 'LineString', coordinates: [[13, 55]] } },
        ok,
        { ...ok, id: 'other', properties: { ...ok?.properties, kind: 'university' } },
        { ...ok, id: 'x', properties: { ...ok?.properties, id: 'y' } },
        ok,
        'not a feature',
        { ...ok, id: 'far', geometry: { type: 'Point', coordinates: [13.2, 155] } },
      ],
    })
    const { sites, errors } = parseSitesFile(text, 'geojson')
    expect(sites.map((s) => s.id)).toEqual(['demo-lund-f-001'])
    expect(errors.map((e) => e.row)).toEqual([1, 3, 4, 5, 6, 7])
    expect(errors[0]?.message).toMatch(/^features\[0\]: not a Point Feature/)
    expect(errors[1]?.message).toMatch(/^features\[2\]: kind/)
    expect(errors[2]?.message).toMatch(/differ/)
    expect(errors[3]?.message).toMatch(/duplicate id "demo-lund-f-001" \(first used at row 2\)/)
    expect(errors[5]?.message).toMatch(/^features\[6\]: lat/)
  })

  it('refuses text that is not JSON or not a FeatureCollection as a whole', () => {
    expect(parseSitesFile('{"type":', 'geojson').errors).toEqual([
      { row: 0, message: expect.stringMatching(/not valid JSON/) },
    ])
    expect(parseSitesFile('{"type":"Feature"}', 'geojson').errors).toEqual([
      { row: 0, message: expect.stringMatching(/FeatureCollection/) },
    ])
  })
})

describe('detectSitesFormat', () => {
  it('goes by content first, then by file name', () => {
    expect(detectSitesFormat('sites.csv', '\uFEFF  {"type":"FeatureCollection"}')).toBe('geojson')
    expect(detectSitesFormat('sites.geojson', '')).toBe('geojson')
    expect(detectSitesFormat('SITES.JSON', 'id,name')).toBe('geojson')
    expect(detectSitesFormat('sites.csv', HEADER)).toBe('csv')
    expect(detectSitesFormat('export.txt', 'id;name')).toBe('csv')
  })
})

describe('the committed demo registry (infra/demo)', () => {
  it('imports without errors, every site marked demo with a demo name', async () => {
    const url = new URL('../../../infra/demo/lund-demo-sites.geojson', import.meta.url)
    const { sites, errors } = parseSitesFile(await readFile(url, 'utf8'), 'geojson')
    expect(errors).toEqual([])
    expect(sites.length).toBeGreaterThanOrEqual(140)
    for (const site of sites) {
      expect(site.demo).toBe(true)
      expect(site.name).toMatch(/demo/i)
      expect(site.municipality).toBe('Lund')
      expect(site.id).toMatch(ID_PATTERN)
      expect(site.id).toMatch(/^demo-[a-z-]+-[fsb]-\d{3}$/)
    }
    // One urban background site, so the demo's site reports can show a school's local increment.
    expect(sites.filter((s) => s.kind === 'background').map((s) => s.id)).toEqual(['demo-lund-b-001'])
  })
})
