/**
 * Links in messages, built from the deployment's public address (PUBLIC_URL): the dashboard opened on the
 * site, and the one-click unsubscribe endpoint of the API (RFC 8058).
 */
export interface Links {
  site(siteId: string | null): string
  unsubscribe(subscriptionId: string, secret: string): string
}

export function createLinks(publicUrl: string): Links {
  const base = publicUrl.replace(/\/+$/, '')
  return {
    site: (siteId) => (siteId === null ? `${base}/` : `${base}/?site=${encodeURIComponent(siteId)}`),
    unsubscribe: (id, secret) =>
      `${base}/api/v1/unsubscribe/${encodeURIComponent(id)}?token=${encodeURIComponent(secret)}`,
  }
}
