/**
 * The Ssl service on Node's native TLS, and plain TCP ports for STARTTLS.
 *
 * @since 0.1.0
 */
import type { Port, Protocol, SslError } from "@effect-ssl/core"
import { Pki, Ssl, SslContext } from "@effect-ssl/core"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as Socket from "@effect/platform/Socket"
import type * as SocketServer from "@effect/platform/SocketServer"
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import type * as Scope from "effect/Scope"
import type * as Http from "node:http"
import * as HttpSession from "./internal/httpSession.js"
import * as PlatformSocket from "./internal/platformSocket.js"

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

// node:tls is loaded on demand, so a Node built without it gets Ssl.layerUnavailable, not a crash.
const load = Effect.tryPromise({
  try: () =>
    Promise.all([import("./internal/secureContext.js"), import("./internal/tcp.js"), import("./internal/wrap.js")])
      .then(([secureContext, tcp, wrap]) => ({ ...secureContext, ...tcp, ...wrap })),
  catch: reasonOf
})

const layerSsl: Layer.Layer<Ssl.Ssl | SslContext.CipherValidator> = Layer.unwrapEffect(
  Effect.match(
    Effect.flatMap(load, (NodeTls) =>
      Effect.promise(() => import("./internal/service.js")).pipe(
        Effect.flatMap((service) => service.make),
        Effect.map((service) => ({ service, validate: NodeTls.validateCiphers }))
      )),
    {
      onFailure: (reason) =>
        Layer.merge(
          Ssl.layerUnavailable(reason),
          Layer.succeed(SslContext.CipherValidator, SslContext.CipherValidator.defaultValue())
        ),
      // Cipher strings are checked by OpenSSL itself when set, not at the first handshake.
      onSuccess: ({ service, validate }) =>
        Layer.merge(Layer.succeed(Ssl.Ssl, service), Layer.succeed(SslContext.CipherValidator, validate))
    }
  )
)

// Certificates and keys are read and checked by OpenSSL through node:crypto, loaded on demand too.
const layerPki: Layer.Layer<Pki.Pki> = Layer.unwrapEffect(
  Effect.match(Effect.tryPromise({ try: () => import("./internal/x509.js"), catch: reasonOf }), {
    onFailure: Pki.layerUnavailable,
    onSuccess: (X509) => Layer.succeed(Pki.Pki, X509.pki)
  })
)

/**
 * Provides `Ssl.Ssl` over node:tls, and `Pki.Pki` over node:crypto (certificates and keys read and
 * checked by OpenSSL, for `SslContext`'s loading functions); where node:tls cannot load,
 * `Ssl.layerUnavailable` with the load error's text.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Ssl } from "@effect-ssl/core"
 * import { NodeSsl } from "@effect-ssl/node"
 *
 * Effect.runPromise(Effect.provide(Ssl.available, NodeSsl.layer)) // true
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Ssl.Ssl | SslContext.CipherValidator | Pki.Pki> = Layer.merge(layerSsl, layerPki)

const TcpListenerTypeId: unique symbol = Symbol.for("@effect-ssl/node/TcpListener")

/**
 * A plain TCP listener (`tcpListen`).
 *
 * @since 0.1.0
 * @category models
 */
export interface TcpListener {
  readonly [TcpListenerTypeId]: {
    readonly accept: Effect.Effect<Port.Duplex, SslError.SslError, Scope.Scope>
  }
  readonly address: Ssl.Address
  readonly close: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category refinements
 */
export const isTcpListener = (u: unknown): u is TcpListener => Predicate.hasProperty(u, TcpListenerTypeId)

/**
 * A plain TCP connection as a `Port.Duplex`, to speak plaintext first and then `Ssl.wrap` it
 * (STARTTLS). Wrapping it uses the socket itself. Closed when the scope ends.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tcpConnect = (
  hostname: string,
  port: number
): Effect.Effect<Port.Duplex, SslError.ConnectError | SslError.InvalidArgumentError, Scope.Scope> =>
  Effect.flatMap(
    Effect.orDie(load),
    (NodeTls) => Effect.map(NodeTls.tcpConnect(hostname, port), NodeTls.plainDuplex)
  ) as never

/**
 * A plain TCP listener; port 0 picks a free port (`address.port`). Closed when the scope ends.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tcpListen = (
  port: number,
  options?: { readonly hostname?: string | undefined; readonly backlog?: number | undefined }
): Effect.Effect<TcpListener, SslError.ListenError | SslError.InvalidArgumentError, Scope.Scope> =>
  Effect.flatMap(Effect.orDie(load), (NodeTls) =>
    Effect.map(NodeTls.tcpListen(port, options ?? {}), (tcp) => ({
      [TcpListenerTypeId]: {
        // Taken and made the scope's in one step; a plain connection is the user's at once.
        accept: Effect.uninterruptible(Effect.flatMap(tcp.take, (socket) => {
          tcp.handOver(socket)
          return Effect.as(Effect.addFinalizer(() => Effect.sync(() => socket.destroy())), NodeTls.plainDuplex(socket))
        }))
      },
      address: tcp.address,
      close: tcp.close
    }))) as never

/**
 * Accepts the next plain TCP connection of a `tcpListen` listener.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tcpAccept = (listener: TcpListener): Effect.Effect<Port.Duplex, SslError.SslError, Scope.Scope> =>
  listener[TcpListenerTypeId].accept

/**
 * The @effect/platform `Socket` service over TLS, for socket clients such as `@effect/rpc`'s
 * `RpcClient.layerProtocolSocket`. As with `NodeSocket.layerNet`, building the layer connects to
 * nothing: every `run` of the socket connects (`Ssl.connect`, verifying the server as `context`
 * says) and its connection ends with the run, so a client that reconnects gets a new connection,
 * and a failed connect fails that run with `SocketGenericError` "Open" whose `cause` is the
 * `SslError`. Every connection uses the same client context (a protocol name is made into one
 * when the layer is built), so a reconnection can resume the session. The layer itself fails
 * only on a context that is neither a client context nor a protocol.
 *
 * @example
 * ```ts
 * import { RpcClient, RpcSerialization } from "@effect/rpc"
 * import { Layer } from "effect"
 * import type { SslContext } from "@effect-ssl/core"
 * import { NodeSsl } from "@effect-ssl/node"
 *
 * // clientContext verifies rpc.example, and may carry a client certificate
 * const makeProtocol = (clientContext: SslContext.ClientContext) =>
 *   RpcClient.layerProtocolSocket().pipe(
 *     Layer.provide(NodeSsl.layerSocket({ host: "rpc.example", port: 7443, context: clientContext })),
 *     Layer.provide([RpcSerialization.layerNdjson, NodeSsl.layer])
 *   )
 * ```
 *
 * @since 0.2.0
 * @category platform
 */
export const layerSocket: (options: {
  readonly host: string
  readonly port: number
  readonly context?: SslContext.ClientContext | Protocol.Protocol | undefined
}) => Layer.Layer<Socket.Socket, SslError.SslError, Ssl.Ssl> = PlatformSocket.layerSocket

/**
 * The @effect/platform `SocketServer` service over TLS, for socket servers such as `@effect/rpc`'s
 * `RpcServer.layerProtocolSocketServer`. The layer listens (`Ssl.listen`) when it is built and
 * stops when its scope ends; `address` is where it listens (port 0 picks a free port). `run`
 * serves it (`Ssl.serve`): the handler gets each connection as a `Socket` (`Ssl.toSocket`) once
 * its handshake has succeeded, in its own fiber, and the connection closes when the handler ends.
 * A failed handshake or handler is logged at the unhandled-error level, as `NodeSocketServer`
 * does, and the server goes on.
 *
 * @example
 * ```ts
 * import { RpcSerialization, RpcServer } from "@effect/rpc"
 * import { Layer } from "effect"
 * import type { SslContext } from "@effect-ssl/core"
 * import { NodeSsl } from "@effect-ssl/node"
 *
 * // serverContext has the server's certificate and key
 * const makeProtocol = (serverContext: SslContext.ServerContext) =>
 *   RpcServer.layerProtocolSocketServer.pipe(
 *     Layer.provide(NodeSsl.layerSocketServer({ port: 7443, context: serverContext })),
 *     Layer.provide([RpcSerialization.layerNdjson, NodeSsl.layer])
 *   )
 * ```
 *
 * @since 0.2.0
 * @category platform
 */
export const layerSocketServer: (options: {
  readonly port: number
  readonly hostname?: string | undefined
  readonly context?: SslContext.ServerContext | Protocol.Protocol | undefined
}) => Layer.Layer<SocketServer.SocketServer, SslError.SslError, Ssl.Ssl> = PlatformSocket.layerSocketServer

// node:http and @effect/platform-node are loaded only by programs that use the HTTP layers. The
// latter is an optional peer dependency: a program without it fails to build the layer, saying so.
const loadHttp = <A>(layer: string, load: () => Promise<A>): Effect.Effect<A> =>
  Effect.orDieWith(
    Effect.tryPromise({ try: load, catch: reasonOf }),
    (reason) => new Error(`NodeSsl.${layer} needs @effect/platform-node (npm install @effect/platform-node): ${reason}`)
  )

/**
 * Options of `layerHttpServer`.
 *
 * @since 0.2.0
 * @category platform
 */
export interface HttpServerOptions {
  /** 0 picks a free port (the server's `address` tells which) */
  readonly port: number
  /** the address to bind; default all interfaces */
  readonly hostname?: string | undefined
  /** the server's context: its identity, client verification, SNI callback, ciphers, … */
  readonly context: SslContext.ServerContext
  /**
   * how long a client may take to send a request's headers, from the end of its handshake or of
   * the request before (default 60 seconds, at most `requestTimeout`): a client that sends
   * nothing is answered 408 and closed
   */
  readonly headersTimeout?: Duration.DurationInput | undefined
  /** how long a client may take to send a whole request (default 5 minutes; `Duration.infinity` for none) */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** how long an idle keep-alive connection stays open between requests (default 5 seconds) */
  readonly keepAliveTimeout?: Duration.DurationInput | undefined
  /**
   * told of every connection whose handshake fails (verification included); default: logged at
   * the unhandled-error level, as the platform's servers do
   */
  readonly onHandshakeError?: ((cause: Cause.Cause<SslError.SslError>) => Effect.Effect<void>) | undefined
}

/**
 * The @effect/platform `HttpServer` over TLS (HTTPS), for `HttpServer.serve`, `HttpRouter` and
 * `HttpApi` apps. The layer listens (`Ssl.listen`) when it is built and stops when its scope
 * ends. Every connection is accepted as `Ssl.serve` accepts it: its handshake, the client
 * verification the context asks for (a client without a good certificate never reaches the app),
 * the SNI callback, spans and metrics; the context is read at each handshake, so an identity
 * changed with `SslContext.setIdentity` is served from the next connection on, without a restart.
 * Requests are then read by node:http and handled by @effect/platform-node, as with
 * `NodeHttpServer`, with node:http's timeouts for slow or silent clients (`headersTimeout`,
 * `requestTimeout`, `keepAliveTimeout`). A context without ALPN protocols is set to accept
 * `http/1.1` (as https.Server does); one whose list names anything but HTTP/1.x is refused, as
 * node:http speaks HTTP/1.1 only. WebSocket upgrades are not served (`request.upgrade` fails).
 * `sessionOf(request)` tells a handler the TLS session its request came on (the client's
 * certificate, for one). Services such as `HttpPlatform` (for file responses) come from
 * `NodeHttpServer.layerContext`.
 *
 * @example
 * ```ts
 * import { HttpServer, HttpServerResponse } from "@effect/platform"
 * import { Layer } from "effect"
 * import type { SslContext } from "@effect-ssl/core"
 * import { NodeSsl } from "@effect-ssl/node"
 *
 * // serverContext has the server's certificate and key (and maybe requires client certificates)
 * const makeServer = (serverContext: SslContext.ServerContext) =>
 *   HttpServer.serve(HttpServerResponse.text("hello over TLS")).pipe(
 *     Layer.provide(NodeSsl.layerHttpServer({ port: 8443, context: serverContext })),
 *     Layer.provide(NodeSsl.layer)
 *   )
 * ```
 *
 * @since 0.2.0
 * @category platform
 */
export const layerHttpServer = (
  options: HttpServerOptions
): Layer.Layer<HttpServer.HttpServer, SslError.SslError, Ssl.Ssl> =>
  Layer.unwrapEffect(
    Effect.map(loadHttp("layerHttpServer", () => import("./internal/httpServer.js")), (internal) =>
      internal.layer(options))
  )

/**
 * The TLS session an HTTP request came on, for a handler served by `layerHttpServer`: the
 * client's verified certificate, the protocol, the server name it asked for. Fails with
 * `NoSuchElementException` for a request that came another way.
 *
 * @example
 * ```ts
 * import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
 * import { Effect, Option } from "effect"
 * import { NodeSsl } from "@effect-ssl/node"
 *
 * const whoami = Effect.gen(function*() {
 *   const session = yield* NodeSsl.sessionOf(yield* HttpServerRequest.HttpServerRequest)
 *   return HttpServerResponse.text(Option.match(session.peerCertificate, {
 *     onNone: () => "anonymous",
 *     onSome: (certificate) => certificate.subject
 *   }))
 * })
 * ```
 *
 * @since 0.2.0
 * @category platform
 */
export const sessionOf: (
  request: HttpServerRequest.HttpServerRequest
) => Effect.Effect<Ssl.SessionInfo, Cause.NoSuchElementException> = HttpSession.sessionOf

/**
 * Options of `layerHttpClient`.
 *
 * @since 0.2.0
 * @category platform
 */
export interface HttpClientOptions {
  /** node:http agent settings (`keepAlive`, `maxSockets`, …); TLS settings come from the context */
  readonly agent?: Http.AgentOptions | undefined
}

/**
 * The @effect/platform `HttpClient` whose https: requests go over connections made by
 * `Ssl.connect` with `context`: its roots, client certificate, verification and host-name check
 * (against the URL's host name), pins and session cache decide every connection, and each
 * connection runs in the span `effect-ssl.connect` with its metrics. Requests are sent by
 * @effect/platform-node's client (node:http), as with `NodeHttpClient.layer`; http: URLs are sent
 * in the clear, as there. A connection that fails fails its request with the platform's
 * `RequestError` (reason "Transport") whose `cause` is the `SslError` (`VerifyError` for an
 * untrusted server, a pin mismatch or a wrong host name). Connections close with the layer's scope.
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 * import { type SslContext, SslError } from "@effect-ssl/core"
 * import { NodeSsl } from "@effect-ssl/node"
 *
 * // clientContext has the roots, pins and client certificate to use
 * const health = (clientContext: SslContext.ClientContext) =>
 *   HttpClient.get("https://api.example/health").pipe(
 *     Effect.flatMap((response) => response.text),
 *     Effect.catchTag("RequestError", (error) =>
 *       SslError.isSslError(error.cause) ? Effect.succeed(`TLS: ${error.cause.message}`) : Effect.fail(error)),
 *     Effect.provide(NodeSsl.layerHttpClient(clientContext).pipe(Layer.provide(NodeSsl.layer)))
 *   )
 * ```
 *
 * @since 0.2.0
 * @category platform
 */
export const layerHttpClient = (
  context: SslContext.ClientContext | Protocol.Protocol,
  options?: HttpClientOptions
): Layer.Layer<HttpClient.HttpClient, SslError.SslError, Ssl.Ssl> =>
  Layer.unwrapEffect(
    Effect.map(
      loadHttp("layerHttpClient", () => import("./internal/httpClient.js")),
      (internal) => internal.layer(context, options)
    )
  )
