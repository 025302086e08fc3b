/**
 * @effect/rpc over mutually authenticated TLS: the socket protocol on NodeSsl.layerSocket and
 * NodeSsl.layerSocketServer, and SslErrors crossing it typed.
 */
import { Ssl, type SslContext, SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import * as SocketServer from "@effect/platform/SocketServer"
import { Rpc, RpcClient, RpcGroup, RpcSerialization, RpcServer } from "@effect/rpc"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { serveOn } from "../../core/test/helpers/Connections.js"
import {
  clientContext,
  clientWithCertificate,
  requiringClientCertificates,
  serverContext,
  TestLayer
} from "../../core/test/helpers/Contexts.js"
import { freePort } from "../../core/test/helpers/RawPeers.js"

/** The server connects to localhost:port for the caller and tells what it found. */
class Probe extends Rpc.make("Probe", {
  payload: { port: Schema.Number },
  success: Schema.Struct({ protocol: Schema.String, verified: Schema.Boolean }),
  error: SslError.SslError
}) {}

/** Fails with exactly the VerifyError it is given (an error the handler makes itself). */
class Refuse extends Rpc.make("Refuse", {
  payload: { reason: Schema.Literal("Expired", "HostnameMismatch") },
  error: SslError.VerifyError
}) {}

class Echo extends Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String }) {}

class Rpcs extends RpcGroup.make(Probe, Refuse, Echo) {}

/** The server's handlers; `calls` counts the requests that reached them. */
const handlers = (calls: Ref.Ref<number>) =>
  Rpcs.toLayer(Effect.gen(function*() {
    const ssl = yield* Ssl.Ssl
    // The server's own client context: it trusts the fixture root, like the RPC client.
    const probing = yield* clientContext()
    const counted = <A, E>(effect: Effect.Effect<A, E>) => Effect.zipRight(Ref.update(calls, (n) => n + 1), effect)
    return {
      Probe: ({ port }) =>
        counted(
          Effect.scoped(Effect.flatMap(Ssl.connect("localhost", port, probing), (conn) => conn.session)).pipe(
            Effect.map(({ protocol, verified }) => ({ protocol, verified })),
            Effect.provideService(Ssl.Ssl, ssl)
          )
        ),
      Refuse: ({ reason }) =>
        counted(
          Effect.fail(
            new SslError.VerifyError({ reason, side: "client", peer: "elsewhere.example:443", code: "X509_TEST" })
          )
        ),
      Echo: ({ text }) => counted(Effect.succeed(text))
    }
  }))

/** Starts the RPC server on an ephemeral port of 127.0.0.1 for the scope; its port. */
const startServer = (calls: Ref.Ref<number>) =>
  Effect.gen(function*() {
    const sockets = yield* Layer.build(
      NodeSsl.layerSocketServer({ port: 0, hostname: "127.0.0.1", context: yield* requiringClientCertificates() })
    )
    yield* Layer.build(
      RpcServer.layer(Rpcs).pipe(
        Layer.provide(handlers(calls)),
        Layer.provide(RpcServer.layerProtocolSocketServer),
        Layer.provide(RpcSerialization.layerNdjson),
        Layer.provide(Layer.succeedContext(sockets))
      )
    )
    return (Context.get(sockets, SocketServer.SocketServer).address as SocketServer.TcpAddress).port
  })

/** An RPC client for the scope, over a TLS socket to localhost:port with `context`. */
const makeClient = (port: number, context: SslContext.ClientContext) =>
  Effect.gen(function*() {
    const protocol = yield* Layer.build(
      RpcClient.layerProtocolSocket().pipe(
        Layer.provide(NodeSsl.layerSocket({ host: "localhost", port, context })),
        Layer.provide(RpcSerialization.layerNdjson)
      )
    )
    return yield* Effect.provide(RpcClient.make(Rpcs), protocol)
  })

describe("@effect/rpc over mutually authenticated TLS", () => {
  it.scopedLive("a call goes through, and an SslError a handler fails with arrives typed: catchTag works", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const port = yield* startServer(calls)
      const client = yield* makeClient(port, yield* clientWithCertificate())

      expect(yield* client.Echo({ text: "over TLS" })).toBe("over TLS")

      // A handler's own VerifyError, with every field, the class and the message intact.
      const refused = yield* Effect.flip(client.Refuse({ reason: "HostnameMismatch" }))
      expect(refused).toBeInstanceOf(SslError.VerifyError)
      expect(SslError.isSslError(refused)).toBe(true)
      expect(refused).toMatchObject({
        reason: "HostnameMismatch",
        side: "client",
        peer: "elsewhere.example:443",
        code: "X509_TEST"
      })
      expect(refused.message).toBe(
        new SslError.VerifyError({ reason: "HostnameMismatch", side: "client", peer: "elsewhere.example:443" }).message
      )
      const handled = yield* client.Refuse({ reason: "Expired" }).pipe(
        Effect.as("no error"),
        Effect.catchTag("VerifyError", (error) => Effect.succeed(`caught ${error.reason}`))
      )
      expect(handled).toBe("caught Expired")
      expect(yield* Ref.get(calls)).toBe(3)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("the failures of the server's own TLS connections reach the caller as the SslErrors they were", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const port = yield* startServer(calls)
      const client = yield* makeClient(port, yield* clientWithCertificate())

      // A server the probing context trusts, one with an expired certificate, one self-signed.
      const good = yield* serveOn(yield* serverContext())
      const expired = yield* serveOn(yield* serverContext("expired-chain.pem", "expired.key"))
      const selfSigned = yield* serveOn(yield* serverContext("self-signed.pem", "self-signed.key"))

      expect(yield* client.Probe({ port: good.address.port })).toEqual({ protocol: "TLSv1.3", verified: true })
      const outcome = (port: number) =>
        client.Probe({ port }).pipe(
          Effect.as("connected"),
          Effect.catchTags({
            VerifyError: (error) => Effect.succeed(`VerifyError ${error.reason} (${error.side})`),
            ConnectError: (error) => Effect.succeed(`ConnectError ${error.reason}`),
            RpcClientError: (error) => Effect.succeed(`RpcClientError ${error.message}`)
          }),
          Effect.catchAll((error) => Effect.succeed(`other ${error._tag}`))
        )
      expect(yield* outcome(expired.address.port)).toBe("VerifyError Expired (client)")
      expect(yield* outcome(selfSigned.address.port)).toBe("VerifyError SelfSigned (client)")
      expect(yield* outcome(yield* freePort)).toBe("ConnectError Refused")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a client without a certificate gets no call through: the server refuses the connection", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const port = yield* startServer(calls)
      const client = yield* makeClient(port, yield* clientContext())
      const error = yield* Effect.flip(client.Echo({ text: "let me in" }))
      expect(error._tag).toBe("RpcClientError")
      expect(yield* Ref.get(calls)).toBe(0)
    }).pipe(Effect.provide(TestLayer)))
})
