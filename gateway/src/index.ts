export * from './config.ts'
export type { Identity, VerifyResult } from './credentials.ts'
export { type Gateway, GatewayError, type GatewayOptions, startGateway } from './gateway.ts'
export * from './limits.ts'
export {
  checkPublish,
  checkSubscribe,
  checkWill,
  DENY_REASONS,
  type DenyReason,
  mayReceive,
  type Principal,
  type ServiceRole,
} from './permissions.ts'
export type { DeviceRefusals, GatewayStats, RefusalCounts, RefusalKind } from './stats.ts'
