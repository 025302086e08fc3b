/**
 * A handshake client in a fresh process, for the cold handshake figure: `--impl effect|raw
 * --count N`, spawned with an IPC channel. Once its client context is made it sends
 * `{ ready: true }`; on `{ go: port }` it makes N sequential handshakes against that port
 * (figures/handshakes.ts, the same code the warm figures run) and sends
 * `{ ms, cpuMicros }`: the wall-clock time and this process's CPU time (all threads) of the N,
 * from the first connect on. Then it exits.
 */
import { answerCpuQueries } from "../lib/common.js"
import { Meter } from "../lib/meter.js"

const arg = (name: string) => process.argv[process.argv.indexOf(`--${name}`) + 1]
const impl = arg("impl")
const count = Number(arg("count"))
if (!(Number.isInteger(count) && count > 0)) throw new Error("client.ts: --count wants a positive integer")
if (process.send === undefined) throw new Error("client.ts wants an IPC channel")
answerCpuQueries()

const go = new Promise<number>((resolve) => {
  const listener = (m: unknown) => {
    const port = (m as { go?: unknown } | null)?.go
    if (typeof port === "number") {
      process.off("message", listener)
      resolve(port)
    }
  }
  process.on("message", listener)
})

// Everything but the handshakes happens before `ready`: loading the code, making the context.
let run: (port: number, meter: Meter) => Promise<void>
let dispose = async () => {}
if (impl === "effect") {
  const { effectHandshakes } = await import("../figures/handshakes.js")
  const { clientContext, makeRuntime } = await import("../lib/effect.js")
  const runtime = makeRuntime()
  const client = await runtime.runPromise(clientContext("tls1.3"))
  run = (port, meter) => effectHandshakes(runtime, client, port, count, 1, meter)
  dispose = () => runtime.dispose()
} else if (impl === "raw") {
  const { rawHandshakes } = await import("../figures/handshakesRaw.js")
  run = (port, meter) => rawHandshakes(port, count, 1, meter)
} else {
  throw new Error("usage: client.ts --impl effect|raw --count N")
}

process.send({ ready: true })
const meter = new Meter()
await run(await go, meter)
process.send({ ms: meter.ms, cpuMicros: meter.clientMicros }, () => {
  void dispose().then(() => process.exit(0))
})
