/**
 * A preload that counts a process's garbage collections (perf_hooks 'gc' entries) and prints them
 * on stderr when it exits, with its arguments (the bench server prints `--impl effect`, say). For
 * the bench's child processes (whose working directory is bench/), from the repository's root
 * after `node bench/build.mjs`:
 *
 *   BENCH_CHILD_NODE_FLAGS="--import ./floors/gcCount.mjs" node bench/dist/index.js --only remote,both
 */
import { constants, PerformanceObserver } from "node:perf_hooks"

let scavenges = 0
let markCompacts = 0
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = entry.detail?.kind
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++
    else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) markCompacts++
  }
}).observe({ entryTypes: ["gc"] })

process.on("exit", () => {
  process.stderr.write(
    `[gc ${process.argv.slice(2).join(" ")}] ${scavenges} scavenges, ${markCompacts} mark-compacts\n`
  )
})
