#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=1048576 MALLOC_MMAP_THRESHOLD_=262144 node --max-semi-space-size=4 --heap-growing-percent=50
// Entry point for `npx skolluft`: runs the TypeScript sources through tsx, so there is no build step.
//
// The first line starts node with memory settings (issue 5: an export of 10 million rows stays under 150 MB of
// resident memory). Measured on `skolluft api` exporting 2 million raw rows (breakdown in bench/export.ts), resident set
// before / peak during the export, without these settings 142 / 275 MB:
// - MALLOC_ARENA_MAX=2: glibc otherwise gives each busy thread (V8's compiler and GC workers, tsx's loader thread)
//   its own 64 MB arena; those held 30 MB at rest and 47 MB while exporting.
// - MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_: fixed thresholds, so glibc returns freed memory to the system
//   instead of raising both after the first large free (start-up garbage otherwise stayed: 26 MB).
// - --max-semi-space-size=4 (MB): V8's young generation grew to 32 MB at start-up and stayed there. 2 MB saved
//   another ~10 MB but spent half the export's time collecting garbage (10 million schema 2 CSV rows: 2 MB 179 000
//   rows/s, peak 135 MB; 4 MB 276 000 rows/s, peak 143 MB; 8 MB 315 000 rows/s, peak 158 MB; bench/export.ts).
//   Ingest is unchanged by it (bench:ingest ratio 0.68 with and without).
// - --heap-growing-percent=50: the old generation is collected at 1.5x its live size, not up to 4x (the export's
//   promoted garbage reached 80 MB before a full collection).
// A shebang line is read by the kernel (Linux >= 5.1 allows 256 bytes); `node cli/bin/skolluft.js` bypasses it,
// so the API's systemd unit passes the same settings itself (infra/systemd/skolluft-api.service).
import { register } from 'tsx/esm/api'

register()
const { runCli } = await import('../src/main.ts')
process.exitCode = await runCli(process.argv.slice(2), process.env)
