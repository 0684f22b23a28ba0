import { ConfigError, loadConfig, silentLogger } from '@skolluft/runtime'
import { describe, expect, it } from 'vitest'
import { faultRatesFromConfig, SimConfig } from './config.ts'
import { DEFAULT_FAULT_RATES, NO_FAULTS } from './faults.ts'
import { createFleet, FleetError } from './fleet.ts'

describe('SimConfig', () => {
  it('has working defaults', () => {
    const config = loadConfig(SimConfig, {})
    expect(config).toMatchObject({
      MQTT_URL: 'mqtt://127.0.0.1:1883',
      SIM_INTERVAL_S: 60,
      SIM_SEED: 1,
      SIM_BACKFILL_DAYS: 0,
    })
    expect(faultRatesFromConfig(config)).toEqual(DEFAULT_FAULT_RATES)
  })

  it('turns faults off with SIM_FAULT_RATE=0 and takes single rates over the overall one', () => {
    expect(faultRatesFromConfig(loadConfig(SimConfig, { SIM_FAULT_RATE: '0' }))).toEqual(NO_FAULTS)
    const rates = faultRatesFromConfig(loadConfig(SimConfig, { SIM_FAULT_RATE: '0', SIM_FAULT_OUTAGE: '3' }))
    expect(rates).toEqual({ ...NO_FAULTS, outage: 3 })
  })

  it('names every bad variable', () => {
    const bad = { MQTT_URL: 'http://x', SIM_INTERVAL_S: '0', SIM_FAULT_NOISE: '2' }
    expect(() => loadConfig(SimConfig, bad)).toThrow(ConfigError)
    try {
      loadConfig(SimConfig, bad)
    } catch (error) {
      const problems = (error as ConfigError).problems.join('\n')
      for (const name of Object.keys(bad)) expect(problems).toContain(name)
    }
  })
})

describe('createFleet options', () => {
  const base = { log: silentLogger(), mqttUrl: 'mqtt://127.0.0.1:1', devices: [] }
  it('refuses impossible settings with a coded error', () => {
    expect(() => createFleet({ ...base, timeScale: 0 })).toThrow(FleetError)
    expect(() => createFleet({ ...base, intervalS: 0.5 })).toThrow(/intervalS/)
    const device = { deviceId: 'sim-a', password: 'p', siteId: 'a', lat: 55.7, lon: 13.2, kind: 'school' as const }
    expect(() => createFleet({ ...base, devices: [device, device] })).toThrow(/twice/)
  })

  it('will not backfill before it is started', async () => {
    const fleet = createFleet(base)
    await expect(fleet.backfill({ days: 1 })).rejects.toMatchObject({ code: 'FLEET_NOT_STARTED' })
  })
})
