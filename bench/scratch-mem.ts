// Scratch (not committed): heap snapshots around 300 idle effect-ssl pairs.
import { Ssl } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as v8 from "node:v8"
import { HOST, LISTEN_HOST } from "./lib/common.js"
import { clientContext, drain, makeRuntime, serverContext } from "./lib/effect.js"

const runtime = makeRuntime()
const gc = (globalThis as { gc?: () => void }).gc!
await runtime.runPromise(Effect.scoped(Effect.gen(function*() {
  const server = yield* serverContext("rsa")
  const client = yield* clientContext()
  const listener = yield* Ssl.listen(0, { hostname: LISTEN_HOST, context: server })
  let accepted = 0
  yield* Effect.forkScoped(Ssl.serve(listener, (conn) => Effect.zipRight(Effect.sync(() => { accepted++ }), drain(conn.input))))
  const held = yield* Scope.make()
  const open = (n: number) => Effect.forEach(Array.from({ length: n }), () => Scope.extend(Ssl.connect(HOST, listener.address.port, client), held), { concurrency: 16, discard: true })
  const until = (n: number) => Effect.promise(() => new Promise<void>((r) => { const t = setInterval(() => { if (accepted >= n) { clearInterval(t); r() } }, 10) }))
  yield* open(50)
  yield* until(50)
  gc(); gc()
  const b = process.memoryUsage()
  v8.writeHeapSnapshot("/tmp/before.heapsnapshot")
  yield* open(300)
  yield* until(350)
  gc(); gc()
  const a = process.memoryUsage()
  v8.writeHeapSnapshot("/tmp/after.heapsnapshot")
  console.log("heap per pair KiB", ((a.heapUsed - b.heapUsed) / 300 / 1024).toFixed(2), "rss", ((a.rss - b.rss) / 300 / 1024).toFixed(1))
  yield* Scope.close(held, Effect.void as never)
})))
process.exit(0)
