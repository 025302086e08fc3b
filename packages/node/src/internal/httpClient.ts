/**
 * The @effect/platform `HttpClient` over TLS: @effect/platform-node's client (node:http) with an
 * agent whose connections are made by effect-ssl, so that what a client context says (roots,
 * client certificate, verification, host-name check, pins, session cache) decides every https:
 * request.
 *
 * @internal
 */
import { type Protocol, Ssl, type SslContext, SslError } from "@effect-ssl/core"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import * as Https from "node:https"
import type * as Stream from "node:stream"
import type { HttpClientOptions } from "../NodeSsl.js"
import { TlsConnection } from "./connection.js"
import { ioError } from "./errors.js"
import { contextFor } from "./service.js"

type Callback = (error: Error | null, socket: Stream.Duplex) => void

/**
 * An https.Agent that gets its sockets from `Ssl.connect`: each connection lives in a fiber of
 * the client's, whose scope ends when node:http closes the socket (or the client's scope ends).
 */
class SslAgent extends Https.Agent {
  constructor(
    options: Http.AgentOptions | undefined,
    private readonly connect: (host: string, port: number, callback: Callback) => void
  ) {
    super(options)
  }

  override createConnection(options: Http.ClientRequestArgs, callback?: Callback): Stream.Duplex | undefined {
    // `host` is the URL's host name (brackets taken off an IPv6 address): the name connected
    // to, sent as SNI and checked against the certificate.
    const host = options.host ?? options.hostname ?? "localhost"
    const port = Number(options.port ?? options.defaultPort ?? 443)
    this.connect(host, port, callback ?? (() => {}))
    return undefined
  }
}

// A connect that is interrupted (the client's scope ended) still owes node:http an answer.
const clientClosed = () => new Error("the HTTPS client was closed before the connection was made")

const codeOf = (error: unknown) =>
  error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined

/**
 * Once a connection is node:http's, its socket's errors reach the request as Node's own: a TLS
 * alert after the handshake (a TLS 1.3 server refusing the client's certificate sends it after
 * the client's handshake is over), a reset. They are typed here, as every other effect-ssl
 * connection's are; the request's other failures are left as the platform reports them.
 */
const typed = (error: HttpClientError.HttpClientError): HttpClientError.HttpClientError => {
  const code = codeOf(error.cause)
  if (
    error._tag !== "RequestError" || SslError.isSslError(error.cause) || code === undefined ||
    !(code.startsWith("ERR_SSL_") || code === "ECONNRESET" || code === "EPIPE")
  ) {
    return error
  }
  const url = URL.canParse(error.request.url) ? new URL(error.request.url) : undefined
  const peer = url === undefined || url.protocol !== "https:" ? undefined : `${url.hostname}:${url.port || 443}`
  if (peer === undefined) return error
  return new HttpClientError.RequestError({
    request: error.request,
    reason: error.reason,
    cause: ioError(error.cause, "read", { side: "client", peer }),
    ...(error.description !== undefined ? { description: error.description } : {})
  })
}

/** @internal */
export const make = (
  given: SslContext.ClientContext | Protocol.Protocol | undefined,
  options?: HttpClientOptions
): Effect.Effect<HttpClient.HttpClient, SslError.SslError, Ssl.Ssl | Scope.Scope> =>
  Effect.gen(function*() {
    // One context for every connection, so that they share its session cache.
    const context = yield* contextFor("client", given)
    // As for the socket layer: the handshake timeout in force when the layer is built.
    const timeout = yield* Ssl.HandshakeTimeout
    const runFork = yield* FiberSet.makeRuntime<Ssl.Ssl>()

    const connect = (host: string, port: number, callback: Callback) => {
      let answered = false
      const answer = (error: Error | null, socket?: Stream.Duplex) => {
        if (answered) return
        answered = true
        callback(error, socket as Stream.Duplex)
      }
      runFork(
        Effect.scoped(Effect.gen(function*() {
          const connection = yield* Ssl.withHandshakeTimeout(Ssl.connect(host, port, context), timeout)
          if (!(connection instanceof TlsConnection)) {
            return yield* Effect.dieMessage("NodeSsl.layerHttpClient needs the Ssl service of NodeSsl.layer")
          }
          const socket = connection.detachSocket()
          yield* Effect.async<void>((resume) => {
            const onClose = () => resume(Effect.void)
            socket.once("close", onClose)
            answer(null, socket)
            // A detached socket comes paused. node:http starts listening to it on the next tick
            // (ClientRequest.onSocket); resuming schedules the first read after that.
            socket.resume()
            return Effect.sync(() => socket.off("close", onClose))
          })
        })).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (Exit.isSuccess(exit)) return
              const failure = Cause.failureOption(exit.cause)
              answer(
                failure._tag === "Some"
                  ? failure.value
                  : Cause.isInterruptedOnly(exit.cause)
                  ? clientClosed()
                  : new Error(Cause.pretty(exit.cause))
              )
            })
          )
        )
      )
    }

    const agents = yield* Effect.acquireRelease(
      Effect.sync((): NodeHttpClient.HttpAgent => ({
        [NodeHttpClient.HttpAgentTypeId]: NodeHttpClient.HttpAgentTypeId,
        http: new Http.Agent(options?.agent),
        https: new SslAgent(options?.agent, connect)
      })),
      ({ http, https }) =>
        Effect.sync(() => {
          http.destroy()
          https.destroy()
        })
    )
    const client = yield* Effect.provideService(NodeHttpClient.make, NodeHttpClient.HttpAgent, agents)
    return HttpClient.transformResponse(client, Effect.mapError(typed))
  })

/** @internal */
export const layer = (
  context: SslContext.ClientContext | Protocol.Protocol | undefined,
  options?: HttpClientOptions
): Layer.Layer<HttpClient.HttpClient, SslError.SslError, Ssl.Ssl> =>
  Layer.scoped(HttpClient.HttpClient, make(context, options))
