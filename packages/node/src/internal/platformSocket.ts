/**
 * The @effect/platform socket services over TLS, built on the public Ssl API.
 *
 * @internal
 */
import { type Protocol, Ssl, SslContext, SslError } from "@effect-ssl/core"
import * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"

/** @internal */
export interface SocketOptions {
  readonly host: string
  readonly port: number
  readonly context?: SslContext.ClientContext | Protocol.Protocol | undefined
}

/** @internal */
export interface SocketServerOptions {
  readonly port: number
  readonly hostname?: string | undefined
  readonly context?: SslContext.ServerContext | Protocol.Protocol | undefined
}

/** @internal */
export const layerSocket = (options: SocketOptions): Layer.Layer<Socket.Socket, SslError.SslError, Ssl.Ssl> =>
  Layer.effect(
    Socket.Socket,
    Effect.gen(function*() {
      const given = options.context
      // The types say a client context or a protocol; a JavaScript caller can pass a server's.
      if (given !== undefined && typeof given !== "string" && !SslContext.isClientContext(given)) {
        const other: unknown = given
        return yield* new SslError.InvalidArgumentError({
          argument: "context",
          value: SslContext.isSslContext(other) ? `${other.kind} context` : other,
          reason: "expected a client context or a protocol name"
        })
      }
      // One context for every connection the socket makes, so that a reconnection can resume
      // the session of the connection before it.
      const context = given === undefined || typeof given === "string" ? yield* SslContext.makeClient(given) : given
      // As for a listener: the handshake timeout in force when the layer is built.
      const timeout = yield* Ssl.HandshakeTimeout
      return yield* Ssl.makeSocket(Ssl.withHandshakeTimeout(Ssl.connect(options.host, options.port, context), timeout))
    })
  )

/** @internal */
export const layerSocketServer = (
  options: SocketServerOptions
): Layer.Layer<SocketServer.SocketServer, SslError.SslError, Ssl.Ssl> =>
  Layer.scoped(
    SocketServer.SocketServer,
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(options.port, { hostname: options.hostname, context: options.context })
      const run = <R, E, _>(
        handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>
      ): Effect.Effect<never, SocketServer.SocketServerError, R> =>
        Ssl.serve(listener, (connection) => handler(Ssl.toSocket(connection)), {
          onError: (cause) => reportUnhandled(cause)
        }).pipe(
          Effect.mapError((cause) => new SocketServer.SocketServerError({ reason: "Unknown", cause })),
          // serve returns only by failing (the listener closed); never is what the service promises.
          Effect.zipRight(Effect.never)
        )
      return SocketServer.SocketServer.of({
        address: { _tag: "TcpAddress", hostname: listener.address.hostname, port: listener.address.port },
        run
      })
    })
  )

/**
 * What NodeSocketServer does with a connection that fails: log it at the unhandled-error level
 * (debug unless the program says otherwise), and keep serving.
 *
 * @internal
 */
export const reportUnhandled = (
  cause: Cause.Cause<unknown>,
  message = "Unhandled error in SocketServer"
): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => {
    const level = fiber.getFiberRef(FiberRef.unhandledErrorLogLevel)
    return level._tag === "Some" ? Effect.logWithLevel(level.value, cause, message) : Effect.void
  })
