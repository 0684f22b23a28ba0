import { isValidId, type Site } from '@skolluft/core'
import type { RegistryStore } from '@skolluft/storage'
import { notFoundProblem } from './problem.ts'

/** The site a route's `:id` names, or a 404 problem (`site_not_found`); an id that cannot exist is never looked up. */
export async function siteOr404(registry: Pick<RegistryStore, 'getSite'>, id: string): Promise<Site> {
  const site = isValidId(id) ? await registry.getSite(id) : undefined
  if (site === undefined) throw notFoundProblem(`no site with id ${JSON.stringify(id)}`, 'site_not_found')
  return site
}
