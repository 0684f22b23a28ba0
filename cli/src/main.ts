export async function runCli(_argv: readonly string[], _env: NodeJS.ProcessEnv): Promise<number> {
  console.error('skolluft: not implemented yet')
  return 1
}
