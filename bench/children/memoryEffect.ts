/**
 * The effect-ssl half of children/memory.ts (loaded only there, so the raw side runs without
 * Effect loaded).
 */
import { Ssl } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import { HOST, LISTEN_HOST } from "../lib/common.js"
import { clientContext, drain, makeRuntime, serverContext } from "../lib/effect.js"

export const runEffect = async (
  count: number,
  helpers: {
    readonly snapshot: () => Promise<NodeJS.MemoryUsage>
    readonly report: (before: NodeJS.MemoryUsage, after: NodeJS.MemoryUsage) => void
    readonly until: (condition: () => boolean) => Promise<void>
    readonly warmup: number
    readonly concurrency: number
  }
) => {
  const { concurrency, report, snapshot, until, warmup } = helpers
  const runtime = makeRuntime()
  await runtime.runPromise(Effect.scoped(Effect.gen(function*() {
    const server = yield* serverContext("rsa")
    const client = yield* clientContext()
    const listener = yield* Ssl.listen(0, { hostname: LISTEN_HOST, context: server })
    let accepted = 0
    yield* Effect.forkScoped(Ssl.serve(listener, (conn) =>
      Effect.zipRight(
        Effect.sync(() => {
          accepted++
        }),
        drain(conn.input)
      )))
    const port = listener.address.port
    // The client's connections live in `held`; their input ports read in the background as
    // every effect-ssl connection does (the server's handlers wait in `drain`). Warm-up
    // connections stay open too (see memory.ts).
    const held = yield* Scope.make()
    const open = (n: number) =>
      Effect.forEach(
        Array.from({ length: n }),
        () => Scope.extend(Ssl.connect(HOST, port, client), held),
        { concurrency, discard: true }
      )
    yield* open(warmup)
    yield* Effect.promise(() => until(() => accepted === warmup))
    const before = yield* Effect.promise(snapshot)
    yield* open(count)
    yield* Effect.promise(() => until(() => accepted === warmup + count))
    const after = yield* Effect.promise(snapshot)
    report(before, after)
    yield* Scope.close(held, Effect.void as never)
  })))
}
