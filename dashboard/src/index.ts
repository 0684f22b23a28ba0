/**
 * The live map dashboard: a browser app (src/client) bundled in memory by buildDashboard() for the API
 * to serve. Nothing happens at import.
 */
export {
  type BuildDashboardOptions,
  buildDashboard,
  DashboardBuildError,
  type DashboardBundle,
  type DashboardFile,
} from './build.ts'
