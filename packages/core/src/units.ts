/**
 * NO2 ppb → µg/m³ at the EU reference condition 293.15 K and 101.325 kPa
 * (2008/50/EC Annex VI, kept by 2024/2881): 46.0055 g/mol / 24.055 L/mol = 1.9125.
 * Electrochemical sensors report ppb at ambient conditions; the fixed EU factor is used,
 * not the measured temperature, so values compare with EU and Swedish limit values
 * (air-quality reference §4.4).
 */
export const NO2_UGM3_PER_PPB = 1.9125

export function no2PpbToUgm3(ppb: number): number {
  return ppb * NO2_UGM3_PER_PPB
}
