/**
 * The @effect/platform `HttpServer` over TLS: effect-ssl listens, handshakes and verifies every
 * connection; node:http reads the requests on the connections it is handed; @effect/platform-node
 * turns them into `HttpServerRequest`s.
 *
 * @internal
 */
import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { HttpServerOptions } from "../NodeSsl.js"
import { TlsConnection } from "./connection.js"
import { register } from "./httpSession.js"
import { reportUnhandled } from "./platformSocket.js"
import { contextFor } from "./service.js"

interface Timeouts {
  readonly headersTimeout: number
  readonly requestTimeout: number
  readonly keepAliveTimeout: number
  readonly connectionsCheckingInterval: number
}

const invalid = (argument: string, value: unknown, reason: string) =>
  new SslError.InvalidArgumentError({ argument, value, reason })

/** Node's milliseconds: 0 turns a timeout off, which a Duration says with `infinity`. */
const millis = (
  argument: string,
  input: Duration.DurationInput
): Effect.Effect<number, SslError.InvalidArgumentError> => {
  const duration = Duration.decodeUnknown(input)
  if (duration._tag === "None" || Duration.lessThan(duration.value, Duration.zero)) {
    return Effect.fail(invalid(argument, input, "expected a duration (Duration.infinity for none)"))
  }
  return Effect.succeed(
    Duration.isFinite(duration.value) ? Math.max(1, Math.round(Duration.toMillis(duration.value))) : 0
  )
}

// Node's defaults (a request in 5 minutes, its headers in 1, 5 seconds idle between requests),
// except how often Node looks for expired connections: every 30 seconds by default, so that a
// header timeout of 60 s closes a silent client after 60 to 90 s; here within a tenth of the
// shortest timeout, at most a second late.
const timeoutsOf = (options: HttpServerOptions): Effect.Effect<Timeouts, SslError.InvalidArgumentError> =>
  Effect.gen(function*() {
    const requestTimeout = yield* millis("requestTimeout", options.requestTimeout ?? "5 minutes")
    const headersTimeout = options.headersTimeout === undefined
      ? (requestTimeout === 0 ? 60_000 : Math.min(60_000, requestTimeout))
      : yield* millis("headersTimeout", options.headersTimeout)
    if (requestTimeout > 0 && headersTimeout > requestTimeout) {
      return yield* invalid(
        "headersTimeout",
        options.headersTimeout,
        "the headers cannot take longer than the whole request (requestTimeout)"
      )
    }
    const keepAliveTimeout = yield* millis("keepAliveTimeout", options.keepAliveTimeout ?? "5 seconds")
    const shortest = Math.min(...[headersTimeout, requestTimeout].filter((t) => t > 0), 10_000)
    return {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout,
      connectionsCheckingInterval: Math.max(1, Math.floor(shortest / 10))
    }
  })

// The parser reads HTTP/1.1 only: a server that could choose h2 would hand it an h2 client.
const checkAlpn = (context: SslContext.ServerContext): Effect.Effect<void, SslError.InvalidArgumentError> => {
  const alpn = context.state.alpn
  if (alpn.length === 0) {
    // As https.Server does; a sealed context without ALPN still serves clients that ask for none.
    return SslContext.isSealedContext(context) ? Effect.void : SslContext.setAlpn(context, ["http/1.1"])
  }
  return alpn.every((protocol) => protocol === "http/1.1" || protocol === "http/1.0")
    ? Effect.void
    : Effect.fail(
      invalid(
        "context",
        alpn.join(","),
        "the HTTPS server speaks HTTP/1.x only: its ALPN list may name http/1.1 and http/1.0, nothing else"
      )
    )
}

/**
 * Gives an established connection's socket to node:http and keeps the connection (its scope)
 * until the socket closes.
 */
const handOver = (server: Http.Server) => (connection: Ssl.Connection): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (!(connection instanceof TlsConnection)) {
      // Only an Ssl service other than NodeSsl's could give one; there is no socket to hand over.
      resume(Effect.dieMessage("NodeSsl.layerHttpServer needs the Ssl service of NodeSsl.layer"))
      return
    }
    const socket = connection.detachSocket()
    if (socket.closed) {
      resume(Effect.void)
      return
    }
    register(socket, connection)
    const onClose = () => resume(Effect.void)
    socket.once("close", onClose)
    // how https.Server gives node:http a connection once its handshake is done
    server.emit("connection", socket)
    // A detached socket comes paused, with what was read before put back: node:http listens to
    // it now, so nothing is read before it does.
    socket.resume()
    return Effect.sync(() => socket.off("close", onClose))
  })

/** @internal */
export const make = (
  options: HttpServerOptions
): Effect.Effect<HttpServer.HttpServer, SslError.SslError, Ssl.Ssl | Scope.Scope> =>
  Effect.gen(function*() {
    // (the types say a server context; a JavaScript caller can pass anything)
    const context = yield* contextFor("server", options.context)
    const timeouts = yield* timeoutsOf(options)
    yield* checkAlpn(context)
    const server = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const server = Http.createServer(timeouts)
        // Node starts tracking connections for the header and request timeouts when its server
        // starts listening. This one never listens: effect-ssl does, and hands it connections.
        server.emit("listening")
        return server
      }),
      // stops the timeout checks; every connection is closed by its own scope
      (server) => Effect.sync(() => void server.close())
    )
    const listener = yield* Ssl.listen(options.port, { hostname: options.hostname, context })
    const onError = options.onHandshakeError ?? ((cause) => reportUnhandled(cause, "Unhandled error in HttpServer"))
    yield* Effect.forkScoped(Ssl.serve(listener, handOver(server), { onError }))
    return HttpServer.make({
      address: { _tag: "TcpAddress", hostname: listener.address.hostname, port: listener.address.port },
      serve: (httpApp, middleware) =>
        Effect.gen(function*() {
          const handler = yield* NodeHttpServer.makeHandler(httpApp, middleware!)
          yield* Effect.addFinalizer(() => Effect.sync(() => void server.off("request", handler)))
          server.on("request", handler)
        })
    })
  })

/** @internal */
export const layer = (options: HttpServerOptions): Layer.Layer<HttpServer.HttpServer, SslError.SslError, Ssl.Ssl> =>
  Layer.scoped(HttpServer.HttpServer, make(options))
