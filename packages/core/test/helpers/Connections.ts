/**
 * What tests do with connections: serve a listener in the background (echo by default) and read
 * an input to its end, saying how it ended.
 */
import { type Port, Ssl, type SslContext, type SslError } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/** A connection handler that echoes everything back, then closes its output (close_notify). */
export const echo = (conn: Ssl.Connection): Effect.Effect<void, SslError.SslError> =>
  Effect.zipRight(Stream.run(conn.input.stream, conn.output.sink), conn.output.close)

/**
 * A listener on 127.0.0.1 (ephemeral port) served by `handler` (default: echo) in the background
 * until the scope ends; failed handshakes end their connection only.
 */
export const serveOn = (
  context: SslContext.ServerContext,
  handler: (conn: Ssl.Connection) => Effect.Effect<void, unknown> = echo
): Effect.Effect<Ssl.Listener, SslError.SslError, Ssl.Ssl | Scope.Scope> =>
  Effect.gen(function*() {
    const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context })
    yield* Effect.forkScoped(Ssl.serve(listener, handler))
    return listener
  })

/** How an input ended: cleanly (None after the data) or with a typed failure. */
export type Ending = { readonly data: string; readonly end: "eof" | string }

/** Reads until the input ends; `end` is "eof" for None, else the failure's tag and reason. */
export const drain = (input: Port.Input): Effect.Effect<Ending> =>
  Effect.gen(function*() {
    const decoder = new TextDecoder()
    let data = ""
    while (true) {
      const next = yield* Effect.either(input.read())
      if (Either.isLeft(next)) {
        const error = next.left
        return { data, end: `${error._tag}:${"reason" in error ? String(error.reason) : ""}` }
      }
      if (Option.isNone(next.right)) return { data, end: "eof" }
      data += decoder.decode(next.right.value)
    }
  })
