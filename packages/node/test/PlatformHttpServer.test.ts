/**
 * NodeSsl.layerHttpServer: the platform's HttpServer over TLS, asked by curl (a real HTTPS client)
 * and by raw TLS clients that say nothing.
 */
import { Ssl, SslContext, SslError, SslMetrics } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Tls from "node:tls"
import {
  clientContext,
  requiringClientCertificates,
  serverContext,
  TestLayer
} from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { backTo, eventually, resources } from "../../core/test/helpers/Resources.js"

const decoder = new TextDecoder()

/** What the app answers: the method and path, and the TLS session the request came on. */
const app = (requests: Ref.Ref<number>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const session = yield* NodeSsl.sessionOf(request)
    yield* Ref.update(requests, (n) => n + 1)
    const client = Option.match(session.peerCertificate, { onNone: () => "anonymous", onSome: (c) => c.subject })
    return HttpServerResponse.text(
      `${request.method} ${request.url} over ${session.protocol} alpn=${
        Option.getOrElse(session.alpnProtocol, () => "none")
      } client=${client}`
    )
  })

/** Serves `app` with the HTTPS server layer on 127.0.0.1 until the scope ends; its port. */
const serveHttps = (
  options: Omit<NodeSsl.HttpServerOptions, "port" | "hostname">,
  requests: Ref.Ref<number>
): Effect.Effect<number, SslError.SslError, Ssl.Ssl | Scope.Scope> =>
  Effect.gen(function*() {
    const env = yield* Layer.build(NodeSsl.layerHttpServer({ port: 0, hostname: "127.0.0.1", ...options }))
    const server = Context.get(env, HttpServer.HttpServer)
    yield* HttpServer.serveEffect(app(requests)).pipe(Effect.provideService(HttpServer.HttpServer, server))
    if (server.address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP address")
    return server.address.port
  })

interface CurlResult {
  readonly code: number
  readonly body: string
  readonly status: string
  readonly verbose: string
}

/** curl URL, verbose, trusting the fixture root. */
const curlUrl = (url: string, args: ReadonlyArray<string> = []): Effect.Effect<CurlResult> =>
  Effect.async<CurlResult>((resume) => {
    const child = execFile(
      "curl",
      [
        "--silent",
        "--show-error",
        "--verbose",
        "--noproxy",
        "*",
        "--max-time",
        "10",
        "--cacert",
        fixture("root-ca.pem"),
        "--write-out",
        "\n%{http_code}",
        ...args,
        url
      ],
      { encoding: "utf8" },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
        const cut = stdout.lastIndexOf("\n")
        resume(Effect.succeed({ code, body: stdout.slice(0, cut), status: stdout.slice(cut + 1), verbose: stderr }))
      }
    )
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

/** curl https://localhost:port/path (resolved to 127.0.0.1, so that SNI is sent). */
const curl = (port: number, path: string, args: ReadonlyArray<string> = []): Effect.Effect<CurlResult> =>
  curlUrl(`https://localhost:${port}${path}`, ["--resolve", `localhost:${port}:127.0.0.1`, ...args])

/**
 * Sends `request` (ASCII) with a raw node:tls client, written as the handshake ends and followed by
 * the client's end; everything the server sent until it closed, one character per byte.
 */
const exchange = (port: number, request: string): Effect.Effect<string, Error> =>
  Effect.async<string, Error>((resume) => {
    const socket = Tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: Fs.readFileSync(fixture("root-ca.pem"))
    })
    let text = ""
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      text += chunk
    })
    socket.on("error", (error) => resume(Effect.fail(error)))
    socket.on("close", () => resume(Effect.succeed(text)))
    socket.end(request)
    return Effect.sync(() => void socket.destroy())
  })

/** curl's arguments to present a fixture client certificate. */
const presenting = (chain: string, key: string) => ["--cert", fixture(chain), "--key", fixture(key)]

describe("NodeSsl.layerHttpServer", () => {
  it.scopedLive("serves curl over HTTPS: the app gets the request and its TLS session, ALPN http/1.1", () =>
    Effect.gen(function*() {
      const requests = yield* Ref.make(0)
      const port = yield* serveHttps({ context: yield* serverContext() }, requests)
      const result = yield* curl(port, "/hello?x=1")
      expect(result.code).toBe(0)
      expect(result.status).toBe("200")
      expect(result.body).toBe("GET /hello?x=1 over TLSv1.3 alpn=http/1.1 client=anonymous")
      expect(result.verbose).toMatch(/ALPN.*server accepted.*http\/1\.1/)
      // curl verified the chain and the name itself
      expect(result.verbose).toMatch(/SSL certificate verify ok/)
      expect(yield* Ref.get(requests)).toBe(1)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("requires the client certificate the context asks for: none or an untrusted one refused before the app, a good one seen by it", () =>
    Effect.gen(function*() {
      const requests = yield* Ref.make(0)
      const failures = yield* Ref.make<ReadonlyArray<string>>([])
      const port = yield* serveHttps({
        context: yield* requiringClientCertificates(),
        onHandshakeError: (cause) =>
          Ref.update(failures, (all) => [
            ...all,
            ...Option.toArray(Cause.failureOption(cause)).map((e) => `${e._tag} ${"reason" in e ? e.reason : ""}`)
          ])
      }, requests)

      const refused = yield* curl(port, "/secret")
      expect(refused.code).not.toBe(0)
      expect(refused.status).toBe("000")
      expect(yield* Ref.get(requests)).toBe(0)
      expect(yield* Ref.get(failures)).toEqual(["HandshakeError CertificateRequired"])

      const untrusted = yield* curl(port, "/secret", presenting("untrusted-client.pem", "untrusted-client.key"))
      expect(untrusted.status).toBe("000")
      expect(yield* Ref.get(requests)).toBe(0)
      expect((yield* Ref.get(failures))[1]).toMatch(/^VerifyError /)

      const accepted = yield* curl(port, "/secret", presenting("client-chain.pem", "client.key"))
      expect(accepted.status).toBe("200")
      expect(accepted.body).toMatch(/^GET \/secret over TLSv1\.3 alpn=http\/1\.1 client=.*CN=effect-ssl test client$/)
      expect(yield* Ref.get(requests)).toBe(1)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a handler ported from node:https still finds the client's certificate on the request's socket", () =>
    Effect.gen(function*() {
      const env = yield* Layer.build(NodeSsl.layerHttpServer({
        port: 0,
        hostname: "127.0.0.1",
        context: yield* requiringClientCertificates()
      }))
      const server = Context.get(env, HttpServer.HttpServer)
      yield* HttpServer.serveEffect(Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const socket = NodeHttpServerRequest.toIncomingMessage(request).socket as Tls.TLSSocket
        return HttpServerResponse.text(`client=${socket.getPeerCertificate().subject?.CN ?? "none"}`)
      })).pipe(Effect.provideService(HttpServer.HttpServer, server))
      if (server.address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP address")
      const result = yield* curl(server.address.port, "/", presenting("client-chain.pem", "client.key"))
      expect(result.status).toBe("200")
      expect(result.body).toBe("client=effect-ssl test client")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("serves a rotated identity (setIdentity) from the next connection on, without a restart", () =>
    Effect.gen(function*() {
      const requests = yield* Ref.make(0)
      const context = yield* serverContext()
      const port = yield* serveHttps({ context }, requests)
      const before = yield* curl(port, "/")
      expect(before.status).toBe("200")
      expect(before.verbose).toMatch(/subject: O=effect-ssl; CN=localhost/)

      yield* SslContext.setIdentity(context, {
        chain: fixture("other-server-chain.pem"),
        key: fixture("other-server.key")
      })
      const after = yield* curl(port, "/")
      expect(after.status).toBe("200")
      expect(after.verbose).toMatch(/subject: O=effect-ssl Rotated; CN=localhost/)
      expect(yield* Ref.get(requests)).toBe(2)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("answers with the context its SNI callback picks for the name the client asked for", () =>
    Effect.gen(function*() {
      const requests = yield* Ref.make(0)
      const context = yield* serverContext()
      const rotated = yield* serverContext("other-server-chain.pem", "other-server.key")
      const asked = yield* Ref.make<ReadonlyArray<string>>([])
      yield* SslContext.setServerNameCallback(
        context,
        (name) =>
          Effect.as(
            Ref.update(asked, (all) => [...all, name]),
            name === "localhost" ? Option.some(rotated) : Option.none()
          )
      )
      const port = yield* serveHttps({ context }, requests)
      // by name: SNI "localhost", the callback's context
      const byName = yield* curl(port, "/")
      expect(byName.status).toBe("200")
      expect(byName.verbose).toMatch(/subject: O=effect-ssl Rotated; CN=localhost/)
      expect(yield* Ref.get(asked)).toEqual(["localhost"])
      // by address: no SNI, the listener's own context
      const byAddress = yield* curlUrl(`https://127.0.0.1:${port}/`)
      expect(byAddress.status).toBe("200")
      expect(byAddress.verbose).toMatch(/subject: O=effect-ssl; CN=localhost/)
      expect(yield* Ref.get(asked)).toEqual(["localhost"])
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("closes connections that finish the handshake and send nothing, within the header timeout", () =>
    Effect.gen(function*() {
      const requests = yield* Ref.make(0)
      const headersTimeout = 400
      const port = yield* serveHttps({ context: yield* serverContext(), headersTimeout }, requests)
      const client = yield* clientContext()
      const silent = 20
      const start = Date.now()
      // Each client completes its handshake, sends nothing, and reads until the server closes.
      const answers = yield* Effect.forEach(
        Array.from({ length: silent }),
        () =>
          Effect.scoped(Effect.gen(function*() {
            const conn = yield* Ssl.connect("localhost", port, client)
            const bytes = yield* Stream.runCollect(conn.input.stream)
            return { text: decoder.decode(Buffer.concat(Array.from(bytes))), millis: Date.now() - start }
          })).pipe(
            // a guard with a message instead of the test runner's timeout
            Effect.timeoutFail({
              duration: "5 seconds",
              onTimeout: () => new Error("a silent client is still open after 5 s")
            })
          ),
        { concurrency: "unbounded" }
      )
      for (const answer of answers) {
        expect(answer.text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
        expect(answer.millis).toBeGreaterThanOrEqual(headersTimeout)
        // closed within the timeout and Node's checking interval (a tenth of it here), with slack
        expect(answer.millis).toBeLessThan(headersTimeout + 1500)
      }
      expect(yield* Ref.get(requests)).toBe(0)
      // and the server still serves
      expect((yield* curl(port, "/after")).status).toBe("200")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a client sending its headers too slowly is closed too; one that sends them in time is served", () =>
    Effect.gen(function*() {
      const requests = yield* Ref.make(0)
      const port = yield* serveHttps({ context: yield* serverContext(), headersTimeout: 400 }, requests)
      const client = yield* clientContext()
      const slow = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.connect("localhost", port, client)
        // half a request line, then nothing
        yield* conn.output.write("GET /slow HTTP/1.1\r\nHost: local")
        return decoder.decode(Buffer.concat(Array.from(yield* Stream.runCollect(conn.input.stream))))
      }))
      expect(slow).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
      const fast = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.connect("localhost", port, client)
        yield* conn.output.write("GET /fast HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return decoder.decode(Buffer.concat(Array.from(yield* Stream.runCollect(conn.input.stream))))
      }))
      expect(fast).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nGET \/fast over TLSv1\.3/)
      expect(yield* Ref.get(requests)).toBe(1)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("closes a keep-alive connection idle for keepAliveTimeout after its last response", () =>
    Effect.gen(function*() {
      const requests = yield* Ref.make(0)
      const port = yield* serveHttps({ context: yield* serverContext(), keepAliveTimeout: 300 }, requests)
      const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
      yield* conn.output.write("GET /idle HTTP/1.1\r\nHost: localhost\r\n\r\n")
      const start = Date.now()
      // the response, then the server's close when the connection has been idle long enough
      const text = decoder.decode(Buffer.concat(Array.from(
        yield* Stream.runCollect(conn.input.stream).pipe(
          Effect.timeoutFail({
            duration: "5 seconds",
            onTimeout: () => new Error("the idle connection is still open after 5 s")
          })
        )
      )))
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: keep-alive[\s\S]*GET \/idle over TLSv1\.3/)
      expect(Date.now() - start).toBeGreaterThanOrEqual(250)
      expect(yield* Ref.get(requests)).toBe(1)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a request sent with the end of the handshake (before the server's accept is done) is read whole", () =>
    Effect.gen(function*() {
      const requests = yield* Ref.make(0)
      const port = yield* serveHttps({ context: yield* serverContext() }, requests)
      // node:tls sends what is written before 'secureConnect' right behind its Finished message,
      // so the server's TLS socket may have read the request before it is handed to node:http.
      const answers = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => exchange(port, `GET /early/${i} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
        { concurrency: "unbounded" }
      )
      answers.forEach((answer, i) =>
        expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 200 OK\\r\\n[\\s\\S]*GET /early/${i} over TLSv1\\.3`))
      )
      expect(yield* Ref.get(requests)).toBe(20)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("counts the application bytes node:http read and wrote in SslMetrics, as the ports' own are", () =>
    Effect.gen(function*() {
      const requests = yield* Ref.make(0)
      const port = yield* serveHttps({ context: yield* serverContext() }, requests)
      const read = Metric.value(SslMetrics.bytesRead)
      const written = Metric.value(SslMetrics.bytesWritten)
      const before = { read: (yield* read).count, written: (yield* written).count }
      const body = "x".repeat(10_000)
      const request =
        `POST /counted HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
      const response = yield* exchange(port, request)
      expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*POST \/counted over TLSv1\.3/)
      // counted when the server's connection ends: the plaintext, to the byte (not TLS records)
      const counted = yield* eventually(
        "the server's connection counted",
        Effect.all({ read, written }),
        (now) => now.read.count - before.read > 0
      )
      expect(counted.read.count - before.read).toBe(request.length)
      expect(counted.written.count - before.written).toBe(response.length)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("closing the layer closes its keep-alive connections and gives every descriptor back", () =>
    Effect.gen(function*() {
      const baseline = yield* resources
      const requests = yield* Ref.make(0)
      const context = yield* serverContext()
      const client = yield* clientContext()
      yield* Effect.scoped(Effect.gen(function*() {
        const serverScope = yield* Scope.make()
        const port = yield* Scope.extend(serveHttps({ context }, requests), serverScope)
        const conn = yield* Ssl.connect("localhost", port, client)
        yield* conn.output.write("GET /keep HTTP/1.1\r\nHost: localhost\r\n\r\n")
        const first = yield* conn.input.read()
        expect(decoder.decode(Option.getOrThrow(first))).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: keep-alive/)
        yield* Scope.close(serverScope, Exit.void)
        // the server's close_notify ends the client's input
        expect(Chunk.size(yield* Stream.runCollect(conn.input.stream))).toBe(0)
      }))
      yield* backTo(baseline)
      expect(yield* Ref.get(requests)).toBe(1)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("refuses a context whose ALPN list names a protocol node:http does not speak", () =>
    Effect.gen(function*() {
      const context = yield* serverContext()
      yield* SslContext.setAlpn(context, ["h2", "http/1.1"])
      const exit = yield* Effect.exit(Layer.build(NodeSsl.layerHttpServer({ port: 0, hostname: "127.0.0.1", context })))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
      expect(error).toBeInstanceOf(SslError.InvalidArgumentError)
      expect(error?.message).toMatch(/HTTP\/1\.x only/)
    }).pipe(Effect.provide(TestLayer)))
})
