/**
 * The live map dashboard (Leaflet) arrives with the dashboard issue. Until then this package only
 * reserves its place in the workspace; the API already serves the data it will show.
 */
export const DASHBOARD_STATUS = 'not built yet' as const
