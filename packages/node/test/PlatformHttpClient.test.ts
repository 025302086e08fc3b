/**
 * NodeSsl.layerHttpClient: the platform's HttpClient whose TLS comes from a client context, against
 * `openssl s_server -www` and against NodeSsl.layerHttpServer.
 */
import { type Ssl, SslContext, SslError, SslMetrics } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import {
  clientContext,
  clientWithCertificate,
  requiringClientCertificates,
  serverContext,
  TestLayer
} from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { sServer } from "../../core/test/helpers/Openssl.js"
import { silentServer } from "../../core/test/helpers/RawPeers.js"
import { backTo, eventually, resources } from "../../core/test/helpers/Resources.js"

/** The SPKI SHA-256 pin of the first certificate of a PEM file, as `openssl` computes it. */
const opensslPin = (file: string): string =>
  ChildProcess.execSync(
    `openssl x509 -in '${
      fixture(file)
    }' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`
  ).toString().trim()

/** The HttpClient service of the HTTPS client layer, built in the current scope. */
const httpsClient = (
  context: SslContext.ClientContext,
  options?: NodeSsl.HttpClientOptions
): Effect.Effect<HttpClient.HttpClient, SslError.SslError, Ssl.Ssl | Scope.Scope> =>
  Effect.map(Layer.build(NodeSsl.layerHttpClient(context, options)), Context.get(HttpClient.HttpClient))

const getText = (client: HttpClient.HttpClient, url: string) =>
  Effect.flatMap(
    client.get(url),
    (response) => Effect.map(response.text, (text) => ({ status: response.status, text }))
  )

/** The SslError under a request's failure, as a program finds it. */
const sslErrorOf = <A>(effect: Effect.Effect<A, HttpClientError.HttpClientError>) =>
  effect.pipe(
    Effect.flatMap(() => Effect.dieMessage("the request succeeded")),
    Effect.catchTag("RequestError", (error) =>
      SslError.isSslError(error.cause)
        ? Effect.succeed(error.cause)
        : Effect.dieMessage(`not an SslError: ${error.cause}`))
  )

/** layerHttpServer on 127.0.0.1 answering with the client's certificate and the connection's peer port. */
const httpsServer = (context: SslContext.ServerContext) =>
  Effect.gen(function*() {
    const env = yield* Layer.build(NodeSsl.layerHttpServer({ port: 0, hostname: "127.0.0.1", context }))
    const server = Context.get(env, HttpServer.HttpServer)
    yield* HttpServer.serveEffect(Effect.gen(function*() {
      const session = yield* NodeSsl.sessionOf(yield* HttpServerRequest.HttpServerRequest)
      const client = Option.match(session.peerCertificate, { onNone: () => "anonymous", onSome: (c) => c.subject })
      return HttpServerResponse.text(
        `client=${client} port=${session.remoteAddress.port} alpn=${
          Option.getOrElse(session.alpnProtocol, () => "none")
        } resumed=${session.resumed}`
      )
    })).pipe(Effect.provideService(HttpServer.HttpServer, server))
    return server.address._tag === "TcpAddress" ? server.address.port : 0
  })

describe("NodeSsl.layerHttpClient", () => {
  it.scopedLive("GETs from openssl s_server -www, verifying its chain against the context's root", () =>
    Effect.gen(function*() {
      const { port } = yield* sServer(["-www"])
      const client = yield* httpsClient(yield* clientContext())
      const { status, text } = yield* getText(client, `https://localhost:${port}/`)
      expect(status).toBe(200)
      expect(text).toMatch(/New, TLSv1\.3, Cipher is TLS_/)
      expect(text).toContain("no client certificate available")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("counts the request and the response in SslMetrics once the connection ends", () =>
    Effect.gen(function*() {
      const { port } = yield* sServer(["-www"])
      const read = Metric.value(SslMetrics.bytesRead)
      const written = Metric.value(SslMetrics.bytesWritten)
      const before = { read: (yield* read).count, written: (yield* written).count }
      const clientScope = yield* Scope.make()
      const client = yield* Scope.extend(httpsClient(yield* clientContext()), clientScope)
      const { text } = yield* getText(client, `https://localhost:${port}/`)
      yield* Scope.close(clientScope, Exit.void)
      const counted = yield* eventually(
        "the connection counted",
        Effect.all({ read, written }),
        (now) => now.read.count > before.read
      )
      // the page and its status line and headers; node:http's GET request
      const got = counted.read.count - before.read
      expect(got).toBeGreaterThan(text.length)
      expect(got).toBeLessThan(text.length + 1000)
      const sent = counted.written.count - before.written
      expect(sent).toBeGreaterThan("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".length)
      expect(sent).toBeLessThan(1000)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("presents the context's client certificate (s_server -www shows it)", () =>
    Effect.gen(function*() {
      const { port } = yield* sServer(["-www", "-Verify", "1", "-CAfile", "root-ca.pem"])
      const client = yield* httpsClient(yield* clientWithCertificate())
      const { status, text } = yield* getText(client, `https://localhost:${port}/`)
      expect(status).toBe(200)
      expect(text).toContain("Client certificate")
      expect(text).toMatch(/Subject: O=effect-ssl, CN=effect-ssl test client/)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("refuses a server its roots do not trust: RequestError whose cause is the VerifyError", () =>
    Effect.gen(function*() {
      const { port } = yield* sServer(["-www"])
      // trusts only an unrelated root
      const context = yield* SslContext.makeClient()
      yield* SslContext.loadVerifyRootCertificates(context, fixture("unknown-ca.pem"))
      const client = yield* httpsClient(context)
      const error = yield* sslErrorOf(client.get(`https://localhost:${port}/`))
      expect(error._tag).toBe("VerifyError")
      expect(error).toBeInstanceOf(SslError.VerifyError)
      expect((error as SslError.VerifyError).reason).toBe("UnknownIssuer")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("checks the URL's host name against the certificate: HostnameMismatch for a certificate of another host", () =>
    Effect.gen(function*() {
      // a valid certificate for example.com only
      const port = yield* httpsServer(yield* serverContext("wrong-host-chain.pem", "wrong-host.key"))
      const client = yield* httpsClient(yield* clientContext())
      const error = yield* sslErrorOf(client.get(`https://localhost:${port}/`))
      expect(error).toMatchObject({ _tag: "VerifyError", reason: "HostnameMismatch" })
      // the fixture server certificate names 127.0.0.1 too
      const { port: good } = yield* sServer(["-www"])
      expect((yield* getText(client, `https://127.0.0.1:${good}/`)).status).toBe(200)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("enforces the context's pins: the server's key pinned passes, another pin fails with PinMismatch", () =>
    Effect.gen(function*() {
      const { port } = yield* sServer(["-www"])
      const pinned = yield* clientContext()
      yield* SslContext.setPinnedPublicKeys(pinned, [opensslPin("server.pem")])
      expect((yield* getText(yield* httpsClient(pinned), `https://localhost:${port}/`)).status).toBe(200)
      const other = yield* clientContext()
      yield* SslContext.setPinnedPublicKeys(other, [opensslPin("unknown-ca.pem")])
      const error = yield* sslErrorOf((yield* httpsClient(other)).get(`https://localhost:${port}/`))
      expect(error).toMatchObject({ _tag: "VerifyError", reason: "PinMismatch" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("talks to NodeSsl.layerHttpServer with mutual TLS: the server sees the client's certificate", () =>
    Effect.gen(function*() {
      const port = yield* httpsServer(yield* requiringClientCertificates())
      const withCertificate = yield* httpsClient(yield* clientWithCertificate())
      const { status, text } = yield* getText(withCertificate, `https://localhost:${port}/whoami`)
      expect(status).toBe(200)
      expect(text).toMatch(/^client=.*CN=effect-ssl test client port=\d+ alpn=none resumed=false$/)

      // TLS 1.3: the client's handshake is over when the server refuses it; the refusal still
      // arrives typed
      const without = yield* httpsClient(yield* clientContext())
      const refused = yield* sslErrorOf(without.get(`https://localhost:${port}/whoami`))
      expect(refused).toMatchObject({ _tag: "HandshakeError", reason: "CertificateRequired", side: "client" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a new connection resumes the session of the one before (the context's session cache)", () =>
    Effect.gen(function*() {
      const port = yield* httpsServer(yield* serverContext())
      // without keep-alive every request has its own connection
      const client = yield* httpsClient(yield* clientContext())
      const first = yield* getText(client, `https://localhost:${port}/1`)
      const second = yield* getText(client, `https://localhost:${port}/2`)
      expect(first.text).toMatch(/resumed=false$/)
      expect(second.text).toMatch(/resumed=true$/)
      expect(second.text.match(/port=(\d+)/)?.[1]).not.toBe(first.text.match(/port=(\d+)/)?.[1])
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a request interrupted while its handshake waits, then the layer closed: nothing left behind", () =>
    Effect.gen(function*() {
      const clientCtx = yield* clientContext()
      const silent = yield* silentServer
      const baseline = yield* resources
      yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* httpsClient(clientCtx)
        // a server that accepts and never answers the ClientHello
        const result = yield* client.get(`https://localhost:${silent.port}/`).pipe(
          Effect.timeout("200 millis"),
          Effect.either
        )
        expect(result._tag).toBe("Left")
        expect(silent.connections()).toBeGreaterThanOrEqual(1)
      }))
      yield* backTo(baseline)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("keep-alive: requests reuse one verified connection; closing the layer gives every descriptor back", () =>
    Effect.gen(function*() {
      const context = yield* serverContext()
      const clientCtx = yield* clientContext()
      const baseline = yield* resources
      const serverScope = yield* Scope.make()
      const port = yield* Scope.extend(httpsServer(context), serverScope)
      const clientScope = yield* Scope.make()
      const client = yield* Scope.extend(httpsClient(clientCtx, { agent: { keepAlive: true } }), clientScope)
      const first = yield* getText(client, `https://localhost:${port}/1`)
      const second = yield* getText(client, `https://localhost:${port}/2`)
      expect(first.status).toBe(200)
      // the same client port: the same connection
      expect(second.text).toBe(first.text)
      yield* Scope.close(clientScope, Exit.void)
      yield* Scope.close(serverScope, Exit.void)
      yield* backTo(baseline)
    }).pipe(Effect.provide(TestLayer)))
})
