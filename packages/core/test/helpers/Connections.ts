/**
 * What tests do with connections: listen on loopback, serve a listener in the background (echo by
 * default), accept one connection in the background, and read an input to its end, saying how it
 * ended.
 */
import { type Port, Ssl, type SslContext, type SslError } from "@effect-ssl/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { serverContext } from "./Contexts.js"

/** A connection handler that echoes everything back, then closes its output (close_notify). */
export const echo = (conn: Ssl.Connection): Effect.Effect<void, SslError.SslError> =>
  Effect.zipRight(Stream.run(conn.input.stream, conn.output.sink), conn.output.close)

/** A listener on 127.0.0.1 (ephemeral port) with the fixture server chain, in the current scope. */
export const localListener = Effect.flatMap(
  serverContext(),
  (context) => Ssl.listen(0, { hostname: "127.0.0.1", context })
)

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

/**
 * Accepts one connection on `listener` in a fiber of the current scope: `connection` waits for it
 * (or the accept's failure); the connection lives as long as that scope.
 */
export const acceptOne = (listener: Ssl.Listener): Effect.Effect<
  {
    readonly connection: Effect.Effect<Ssl.Connection, SslError.SslError>
    readonly fiber: Fiber.RuntimeFiber<boolean>
  },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const done = yield* Deferred.make<Ssl.Connection, SslError.SslError>()
    const fiber = yield* Effect.forkScoped(
      Effect.flatMap(Effect.exit(Ssl.accept(listener)), (exit) => Deferred.complete(done, exit))
    )
    return { connection: Deferred.await(done), fiber }
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
