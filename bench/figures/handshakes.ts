/**
 * Handshakes per second against the server process: connect, TLS 1.3 handshake (the client
 * verifies the server), one byte there and back, close; sequentially or from `concurrency`
 * clients at once. The effect-ssl side; the raw node:tls side is in handshakesRaw.ts.
 */
import { Ssl, type SslContext } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import { HOST } from "../lib/common.js"
import type { Runtime } from "../lib/effect.js"
import type { Meter } from "../lib/meter.js"
import { byte, H } from "../lib/protocol.js"
import { split } from "./handshakesRaw.js"

export { rawHandshakes } from "./handshakesRaw.js"

const H_BYTE = byte(H)

/** One handshake; what was negotiated, for the checks. */
const effectOne = (client: SslContext.ClientContext, port: number) =>
  Effect.scoped(Effect.gen(function*() {
    const conn = yield* Ssl.connect(HOST, port, client)
    yield* conn.output.write(H_BYTE)
    const answer = yield* conn.input.readExactly(1)
    if (answer[0] !== H) throw new Error("bench handshakes (effect-ssl): unexpected answer")
    return yield* conn.session
  }))

/**
 * `effect` `n` times in turn. A loop of flatMaps, as the raw side's is a plain loop: Effect.repeatN
 * drives a Schedule (a clock read and its state per round), 0.12 M instructions per round in
 * valgrind (floors/client.mjs "one" vs "one-loop"), which is the harness's cost, not effect-ssl's.
 */
const times = <E, R>(effect: Effect.Effect<void, E, R>, n: number): Effect.Effect<void, E, R> =>
  n <= 0 ? Effect.void : Effect.flatMap(effect, () => times(effect, n - 1))

/**
 * `count` handshakes from `concurrency` clients, timed by `meter`. Every one must negotiate TLS
 * 1.3; with `resumed` (a client context that caches sessions), one full handshake first (before
 * the meter starts) and every timed one must resume (`session.resumed`).
 */
export const effectHandshakes = (
  runtime: Runtime,
  client: SslContext.ClientContext,
  port: number,
  count: number,
  concurrency: number,
  meter: Meter,
  options: { readonly resumed?: boolean } = {}
): Promise<void> => {
  const resumed = options.resumed === true
  const one = Effect.flatMap(effectOne(client, port), (session) => {
    if (session.protocol !== "TLSv1.3") {
      return Effect.dieMessage(`bench handshakes (effect-ssl): negotiated ${session.protocol}`)
    }
    if (resumed && !session.resumed) return Effect.dieMessage("bench handshakes (effect-ssl): not resumed")
    return Effect.void
  })
  return runtime.runPromise(Effect.gen(function*() {
    // The context's cache is per host and port, shared by all clients: one full handshake fills it.
    if (resumed) yield* effectOne(client, port)
    yield* Effect.promise(() => meter.start())
    yield* Effect.forEach(split(count, concurrency), (n) => times(one, n), { concurrency: "unbounded", discard: true })
    yield* Effect.promise(() => meter.stop())
  }))
}
