/**
 * A TLS connection as an @effect/platform `Socket`, with the semantics of
 * `@effect/platform-node`'s `NodeSocket` (run, runRaw, writer, close), on effect-ssl's ports.
 *
 * @internal
 */
import * as Socket from "@effect/platform/Socket"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type { Connection } from "../Ssl.js"
import type { SslError } from "../SslError.js"

/**
 * A socket over `open`: every `run` opens a connection in its own scope and the connection ends
 * with the run (what `NodeSocket.makeNet` does with its TCP connection); `writer`'s writes go to
 * the connection of the run under way and wait while there is none.
 *
 * @internal
 */
export const fromOpen = (open: Effect.Effect<Connection, SslError, Scope.Scope>): Socket.Socket => make(undefined, open)

/**
 * A socket over an established connection. `run` reads it until its end of input and can be
 * called again; writes go to it whether a run is under way or not. The connection belongs to the
 * scope it was made in: a run ending does not close it.
 *
 * @internal
 */
export const fromConnection = (connection: Connection): Socket.Socket => make(connection, undefined)

type Handler<_, E, R> = (data: Uint8Array) => Effect.Effect<_, E, R> | void

const make = (
  fixed: Connection | undefined,
  open: Effect.Effect<Connection, SslError, Scope.Scope> | undefined
): Socket.Socket => {
  // The connection writes go to, and how to end the run reading it (a CloseEvent written).
  let current: Connection | undefined = fixed
  let endRun: ((exit: Exit.Exit<void, Socket.SocketError>) => void) | undefined
  const latch = Effect.unsafeMakeLatch(fixed !== undefined)

  const run = <_, E = never, R = never>(
    handler: Handler<_, E, R>,
    options?: { readonly onOpen?: Effect.Effect<void> | undefined }
  ): Effect.Effect<void, Socket.SocketError | E, R> =>
    Effect.scopedWith((scope) =>
      Effect.gen(function*() {
        const fibers = yield* Scope.extend(FiberSet.make<unknown, E | Socket.SocketError>(), scope)
        const connection = fixed ?? (yield* Scope.extend(
          Effect.mapError(open!, (cause) => new Socket.SocketGenericError({ reason: "Open", cause })),
          scope
        ))
        // A handler's effect runs in its own fiber, as NodeSocket runs it: reading goes on
        // meanwhile, and a handler that waits for more input cannot block its own input.
        const runFork = yield* FiberSet.runtime(fibers)<R>()
        const done = (exit: Exit.Exit<void, Socket.SocketError>) => Deferred.unsafeDone(fibers.deferred, exit)
        const read = Effect.mapError(
          connection.input.read(),
          (cause) => new Socket.SocketGenericError({ reason: "Read", cause })
        )
        const loop: Effect.Effect<void, Socket.SocketError> = Effect.flatMap(read, (chunk) => {
          if (Option.isNone(chunk)) {
            // End of input (the peer's close_notify, or a TCP close): the run is over, as at
            // NodeSocket's 'end'.
            done(Exit.void)
            return Effect.void
          }
          const result = handler(chunk.value)
          if (Effect.isEffect(result)) runFork(result)
          return loop
        })
        yield* FiberSet.run(fibers, loop)

        current = connection
        endRun = done
        yield* latch.open
        if (options?.onOpen !== undefined) yield* options.onOpen
        return yield* FiberSet.join(fibers)
      })
    ).pipe(
      Effect.ensuring(Effect.sync(() => {
        endRun = undefined
        if (fixed === undefined) {
          latch.unsafeClose()
          current = undefined
        }
      })),
      Effect.interruptible
    )

  const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
    latch.whenOpen(Effect.suspend((): Effect.Effect<void, Socket.SocketError> => {
      const connection = current
      if (connection === undefined) {
        return Effect.fail(new Socket.SocketCloseError({ reason: "Close", code: 1006 }))
      }
      if (Socket.isCloseEvent(chunk)) return closeWith(connection, chunk)
      return Effect.mapError(
        connection.output.write(chunk),
        (cause) => new Socket.SocketGenericError({ reason: "Write", cause })
      )
    }))

  // TLS has no close codes: every CloseEvent sends close_notify and stops reading. The code tells
  // the run how it ended: a clean one (1000, 1006) ends it, any other fails it with the event.
  const closeWith = (connection: Connection, event: Socket.CloseEvent) =>
    Effect.suspend(() => {
      endRun?.(
        Socket.defaultCloseCodeIsError(event.code)
          ? Exit.fail(new Socket.SocketCloseError({ reason: "Close", code: event.code, closeReason: event.reason }))
          : Exit.void
      )
      return Effect.zipRight(
        Effect.mapError(connection.output.close, (cause) => new Socket.SocketGenericError({ reason: "Write", cause })),
        connection.input.close
      )
    })

  // As NodeSocket's writer: when its scope ends, the output ends (close_notify), the input stays.
  const writer = Effect.acquireRelease(
    Effect.succeed(write),
    () => current === undefined ? Effect.void : Effect.ignore(current.output.close)
  )

  return Socket.Socket.of({
    [Socket.TypeId]: Socket.TypeId,
    run,
    runRaw: run,
    writer
  })
}
