/** What an alert event stores for its messages: the template input of core alert-messages.ts. */
export { AlertMessageData as AlertEventData } from '@skolluft/core'
