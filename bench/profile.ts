/**
 * One side of one figure, over and over, for `node --cpu-prof` (the harness alternates both sides,
 * which mixes them in one profile):
 *
 *   node bench/build.mjs   (then, for the compiled code pnpm bench measures:)
 *   node --cpu-prof --cpu-prof-dir=prof bench/dist/profile.js bulk [--side raw] [--mib 256]
 *   node --cpu-prof --cpu-prof-dir=prof bench/dist/profile.js handshakes [--cert ec] [--count 300]
 *     [--concurrency 1] [--server effect|raw]  (the server process's side; default: the same as --side)
 *   node --cpu-prof --cpu-prof-dir=prof bench/dist/profile.js interrupt [--count 200] [--warmup 0]
 *     [--side effect|floor|raw]
 *   (`node --import tsx bench/profile.ts …` runs the TypeScript sources instead)
 *
 * `bulk` runs both ends in this process; `handshakes` connects to a server process of the same
 * side (set BENCH_CHILD_NODE_FLAGS="--cpu-prof --cpu-prof-dir=prof" to profile that one too).
 */
import { effectOneProcess, rawOneProcess } from "./figures/bulk.js"
import { effectHandshakes, rawHandshakes } from "./figures/handshakes.js"
import { effectInterrupt, floorInterrupt, rawInterrupt } from "./figures/interrupt.js"
import { type CertKind, spawnScript } from "./lib/common.js"
import { clientContext, makeRuntime, serverContext } from "./lib/effect.js"
import { Meter } from "./lib/meter.js"
import type { ServerPorts } from "./lib/protocol.js"

const args = process.argv.slice(2)
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const what = args[0]
const side = option("side", "effect")
if (side !== "effect" && side !== "raw" && !(side === "floor" && args[0] === "interrupt")) {
  throw new Error("--side effect|raw (interrupt: also floor)")
}

const runtime = makeRuntime()
const start = performance.now()
let result: number
if (what === "bulk") {
  const bytes = Number(option("mib", "256")) * 1024 * 1024
  const piece = Number(option("piece", String(64 * 1024)))
  const server = await runtime.runPromise(serverContext("rsa"))
  const client = await runtime.runPromise(clientContext())
  const meter = new Meter()
  await (side === "effect"
    ? effectOneProcess(runtime, { server, client }, bytes, meter, piece)
    : rawOneProcess(bytes, meter, piece))
  result = bytes / 1e6 / (meter.ms / 1000)
  console.log(`bulk ${side}: ${result.toFixed(0)} MB/s`)
  // Both ends run here: CPU per MiB moved, all threads, less sensitive to a busy machine than MB/s.
  console.log(`cpu per MiB: ${(meter.clientMicros / (bytes / 2 ** 20) / 1000).toFixed(2)} ms`)
} else if (what === "handshakes") {
  const kind = option("cert", "rsa") as CertKind
  const count = Number(option("count", "300"))
  const concurrency = Number(option("concurrency", "1"))
  const serverSide = option("server", side)
  const server = spawnScript("children/server.ts", ["--impl", serverSide], [], { ipc: true })
  const ports = JSON.parse(await server.firstLine) as ServerPorts
  const resumed = args.includes("--resumed")
  const client = await runtime.runPromise(clientContext("tls1.3", { sessionCache: resumed }))
  const meter = new Meter(server)
  await (side === "effect"
    ? effectHandshakes(runtime, client, ports[kind], count, concurrency, meter, { resumed })
    : rawHandshakes(ports[kind], count, concurrency, meter, { resumed }))
  result = count / (meter.ms / 1000)
  console.log(`handshakes ${side} client -> ${serverSide} server, ${kind}: ${result.toFixed(0)}/s`)
  // CPU per handshake of each process (all threads), to compare sides without the wall clock.
  console.log(
    `cpu per handshake: client ${(meter.clientMicros / count / 1000).toFixed(2)} ms, ` +
      `server ${(meter.serverMicros! / count / 1000).toFixed(2)} ms`
  )
  await server.kill()
} else if (what === "interrupt") {
  const count = Number(option("count", "200"))
  const client = await runtime.runPromise(clientContext())
  const sample = (n: number) =>
    side === "effect"
      ? effectInterrupt(runtime, client, n)
      : side === "floor"
      ? floorInterrupt(n)
      : rawInterrupt(n)
  const warmup = Number(option("warmup", "0"))
  if (warmup > 0) await sample(warmup)
  result = await sample(count)
  console.log(`interrupt ${side}: median ${result.toFixed(0)} µs`)
} else {
  throw new Error("usage: profile.ts bulk|handshakes|interrupt [--side effect|raw]")
}
console.log(`${((performance.now() - start) / 1000).toFixed(1)} s`)
await runtime.dispose()
process.exit(0)
