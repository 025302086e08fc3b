/**
 * Spans and metrics of real TLS connections, read through a collecting tracer and metric snapshots;
 * and the key log (SSLKEYLOGFILE lines, for Wireshark), compared with openssl s_client's.
 */
import type { SslError } from "@effect-ssl/core"
import { Port, Ssl, SslContext } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import * as fs from "node:fs"
import type * as Net from "node:net"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Tls from "node:tls"
import { serveOn } from "../../core/test/helpers/Connections.js"
import {
  clientContext,
  clientWithCertificate,
  requiringClientCertificates,
  serverContext,
  TestLayer
} from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { spawnOpenssl } from "../../core/test/helpers/Openssl.js"
import { silentServer } from "../../core/test/helpers/RawPeers.js"
import { eventually } from "../../core/test/helpers/Resources.js"

/** A tracer that keeps every span Effect's own tracer makes. */
const collectingTracer = Effect.map(Effect.tracer, (native) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const span = native.span(name, parent, context, links, startTime, kind, options)
      spans.push(span)
      return span
    },
    context: native.context
  })
  return { tracer, spans, named: (name: string) => spans.filter((span) => span.name === name) }
})

let run = 0
/** A label of its own for each test, so that what other tests recorded does not count. */
const isolated = <A, E, R>(effect: (label: string) => Effect.Effect<A, E, R>) => {
  const label = `observability-${++run}`
  return Effect.tagMetrics(effect(label), "test", label)
}

/** The sum of a metric's series (by name) whose labels include `labels`. */
const metricValue = (name: string, labels: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) => {
    let total = 0
    let count = 0
    for (const pair of pairs) {
      if (pair.metricKey.name !== name) continue
      const tags = new Map(pair.metricKey.tags.map((tag) => [tag.key, tag.value]))
      if (!Object.entries(labels).every(([key, value]) => tags.get(key) === value)) continue
      const state = pair.metricState
      if (MetricState.isCounterState(state)) total += Number(state.count)
      else if (MetricState.isGaugeState(state)) total += Number(state.value)
      else if (MetricState.isHistogramState(state)) count += state.count
    }
    return { total, count }
  })

const attributes = (span: Tracer.Span) => Object.fromEntries(span.attributes)

const endedWith = (span: Tracer.Span) => (span.status._tag === "Ended" ? span.status.exit : undefined)

describe("spans", () => {
  it.scopedLive("connect and accept: one span each, with what was negotiated and who the peer is", () =>
    Effect.gen(function*() {
      const { named, tracer } = yield* collectingTracer
      const served = yield* Deferred.make<Ssl.SessionInfo>()
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() })
      yield* Effect.forkScoped(
        Ssl.serve(listener, (conn) => Effect.flatMap(conn.session, (session) => Deferred.succeed(served, session)))
          .pipe(Effect.withTracer(tracer))
      )
      const ctx = yield* clientContext()
      const session = yield* Effect.scoped(Effect.flatMap(
        Ssl.connect("localhost", listener.address.port, ctx),
        (conn) => conn.session
      )).pipe(Effect.withSpan("the caller"), Effect.withTracer(tracer))
      const serverSession = yield* Deferred.await(served)

      const [connect] = named("effect-ssl.connect")
      expect(named("effect-ssl.connect")).toHaveLength(1)
      expect(connect!.kind).toBe("client")
      expect(Option.map(connect!.parent, (parent) => (parent as Tracer.Span).name)).toEqual(Option.some("the caller"))
      expect(Exit.isSuccess(endedWith(connect!)!)).toBe(true)
      const certificate = Option.getOrThrow(session.peerCertificate)
      expect(attributes(connect!)).toMatchObject({
        "server.address": "localhost",
        "server.port": listener.address.port,
        "effect_ssl.peer": `localhost:${listener.address.port}`,
        "tls.established": true,
        "tls.protocol.version": "1.3",
        "tls.cipher": session.cipher,
        "tls.resumed": false,
        "tls.client.server_name": "localhost",
        "effect_ssl.verified": true,
        "network.peer.address": "127.0.0.1",
        "network.peer.port": listener.address.port,
        "tls.server.subject": certificate.subject,
        "tls.server.issuer": certificate.issuer,
        "tls.server.not_after": certificate.validTo.toISOString(),
        "tls.server.hash.sha256": certificate.fingerprint256.replace(/:/g, "")
      })
      expect(attributes(connect!)).not.toHaveProperty("error.type")

      const [accept] = named("effect-ssl.accept")
      expect(named("effect-ssl.accept")).toHaveLength(1)
      expect(accept!.kind).toBe("server")
      expect(attributes(accept!)).toMatchObject({
        "tls.protocol.version": "1.3",
        "tls.cipher": serverSession.cipher,
        "tls.client.server_name": "localhost",
        // the server asked for no client certificate
        "effect_ssl.verified": false,
        "network.peer.port": session.localAddress.port
      })
      expect(attributes(accept!)).not.toHaveProperty("tls.client.subject")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a failed handshake: the span ends with the error, its tag and reason as attributes, on both sides", () =>
    Effect.gen(function*() {
      const { named, tracer } = yield* collectingTracer
      const serverFailure = yield* Deferred.make<SslError.SslError>()
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* requiringClientCertificates() })
      yield* Effect.forkScoped(
        Ssl.serve(listener, () => Effect.void, {
          onError: (cause) => Effect.asVoid(Deferred.succeed(serverFailure, Cause.squash(cause) as SslError.SslError))
        }).pipe(Effect.withTracer(tracer))
      )
      // This client trusts nothing of the server's chain (it fails), and has no certificate to
      // present (the server fails: it verifies only after OpenSSL's handshake, so it sent one).
      const error = yield* Effect.flip(Effect.scoped(Ssl.connect("localhost", listener.address.port))).pipe(
        Effect.withTracer(tracer)
      )
      expect(error).toMatchObject({ _tag: "VerifyError", reason: "UnknownIssuer" })

      const [connect] = named("effect-ssl.connect")
      expect(endedWith(connect!)).toEqual(Exit.fail(error))
      expect(attributes(connect!)).toMatchObject({
        "error.type": "VerifyError",
        "effect_ssl.error.reason": "UnknownIssuer",
        "effect_ssl.peer": `localhost:${listener.address.port}`
      })
      expect(attributes(connect!)).not.toHaveProperty("tls.established")

      const seen = yield* Deferred.await(serverFailure)
      const [accept] = named("effect-ssl.accept")
      expect(Exit.isFailure(endedWith(accept!)!)).toBe(true)
      expect(attributes(accept!)).toMatchObject({
        "error.type": seen._tag,
        "effect_ssl.error.reason": (seen as SslError.HandshakeError).reason
      })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("wrap: the span says which side and, in connect mode, the server name", () =>
    Effect.gen(function*() {
      const { named, tracer } = yield* collectingTracer
      const [a, b] = yield* Port.pipe()
      const server = yield* Effect.fork(
        Effect.scoped(Effect.flatMap(
          Ssl.wrap(b, { mode: "accept", context: yield* serverContext() }),
          (conn) => conn.session
        )).pipe(Effect.withTracer(tracer))
      )
      yield* Effect.scoped(Ssl.wrap(a, { mode: "connect", context: yield* clientContext(), hostname: "localhost" }))
        .pipe(
          Effect.withTracer(tracer)
        )
      yield* Fiber.join(server)
      const spans = named("effect-ssl.wrap")
      expect(spans.map((span) => span.kind).sort()).toEqual(["client", "server"])
      const client = spans.find((span) => span.kind === "client")!
      expect(attributes(client)).toMatchObject({
        "effect_ssl.peer": "localhost",
        "effect_ssl.verified": true,
        "tls.client.server_name": "localhost"
      })
      // a pipe has no addresses to tell
      expect(attributes(client)).not.toHaveProperty("network.peer.address")
    }).pipe(Effect.provide(TestLayer)))
})

describe("metrics", () => {
  it.scopedLive("handshakes by outcome and duration, and open connections until their scope ends", () =>
    isolated((test) =>
      Effect.gen(function*() {
        const handled = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const serverFailure = yield* Deferred.make<SslError.SslError>()
        const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* requiringClientCertificates() })
        yield* Effect.forkScoped(
          Ssl.serve(listener, () => Effect.zipRight(Deferred.succeed(handled, undefined), Deferred.await(release)), {
            onError: (cause) => Effect.asVoid(Deferred.succeed(serverFailure, Cause.squash(cause) as SslError.SslError))
          })
        )
        const ctx = yield* clientWithCertificate()
        const open = (labels: Record<string, string>) =>
          Effect.map(metricValue("effect_ssl_open_connections", { test, ...labels }), (v) => v.total)

        yield* Effect.scoped(Effect.gen(function*() {
          yield* Ssl.connect("localhost", listener.address.port, ctx)
          yield* Deferred.await(handled)
          expect(yield* open({ operation: "connect", side: "client" })).toBe(1)
          expect(yield* open({ operation: "accept", side: "server" })).toBe(1)
        }))
        // The client's scope has ended; the server's ends with its handler.
        expect(yield* open({ operation: "connect", side: "client" })).toBe(0)
        yield* Deferred.succeed(release, undefined)
        yield* eventually(
          "the server's connection counted closed",
          open({ operation: "accept", side: "server" }),
          (n) => n === 0
        )

        // A failed handshake on both sides: the client trusts nothing, and presents no certificate.
        yield* Effect.flip(Effect.scoped(Ssl.connect("localhost", listener.address.port)))
        const refused = yield* Deferred.await(serverFailure)

        const handshakes = (labels: Record<string, string>) =>
          Effect.map(metricValue("effect_ssl_handshakes_total", { test, ...labels }), (v) => v.total)
        expect(yield* handshakes({ operation: "connect", outcome: "success" })).toBe(1)
        expect(
          yield* handshakes({ operation: "connect", outcome: "failure", error: "VerifyError", reason: "UnknownIssuer" })
        )
          .toBe(1)
        expect(yield* handshakes({ operation: "connect", outcome: "failure" })).toBe(1)
        const durations = yield* metricValue("effect_ssl_handshake_duration_ms", { test, operation: "connect" })
        expect(durations.count).toBe(2)
        yield* eventually(
          "both server handshakes counted",
          handshakes({ operation: "accept", side: "server" }),
          (n) => n === 2
        )
        expect(yield* handshakes({ operation: "accept", outcome: "success" })).toBe(1)
        expect(
          yield* handshakes({
            operation: "accept",
            outcome: "failure",
            error: refused._tag,
            reason: (refused as SslError.HandshakeError).reason
          })
        ).toBe(1)
        // a failed handshake is never counted as open
        expect(yield* open({ operation: "accept" })).toBe(0)
      })
    ).pipe(Effect.provide(TestLayer)))

  it.scopedLive("application bytes each way, counted once per connection when it ends", () =>
    isolated((test) =>
      Effect.gen(function*() {
        const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() })
        yield* Effect.forkScoped(Ssl.serve(listener, (conn) =>
          Effect.gen(function*() {
            yield* conn.input.readExactly(1000)
            yield* conn.output.write(new Uint8Array(300))
            yield* conn.output.close
            yield* conn.input.readAll
          })))
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
          yield* conn.output.write(new Uint8Array(1000))
          expect((yield* conn.input.readAll).length).toBe(300)
          yield* conn.output.close
        }))
        const bytes = Effect.all({
          read: Effect.map(metricValue("effect_ssl_bytes_read_total", { test }), (v) => v.total),
          written: Effect.map(metricValue("effect_ssl_bytes_written_total", { test }), (v) => v.total)
        })
        // the client's 1000 read by the server and its 300 read by the client; the same written
        const counted = yield* eventually("both ends counted", bytes, (b) => b.read === 1300)
        expect(counted).toEqual({ read: 1300, written: 1300 })
      })
    ).pipe(Effect.provide(TestLayer)))

  it.scopedLive("an interrupted handshake is counted as interrupted, and its span ends so", () =>
    isolated((test) =>
      Effect.gen(function*() {
        const { named, tracer } = yield* collectingTracer
        const silent = yield* silentServer
        const connecting = yield* Effect.fork(
          Effect.scoped(Ssl.connect("127.0.0.1", silent.port, "auto")).pipe(Effect.withTracer(tracer))
        )
        yield* eventually("the server saw the connection", Effect.sync(silent.connections), (n) => n === 1)
        yield* Fiber.interrupt(connecting)
        const counted = yield* metricValue("effect_ssl_handshakes_total", { test, outcome: "interrupted" })
        expect(counted.total).toBe(1)
        const [connect] = named("effect-ssl.connect")
        expect(Exit.isInterrupted(endedWith(connect!)!)).toBe(true)
      })
    ).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a connection made after its scope has closed is released at once, and not left counted open", () =>
    isolated((test) =>
      Effect.gen(function*() {
        // A node:tls server that holds the handshake in its SNI callback until told to go on.
        const helloSeen = yield* Deferred.make<void>()
        let goOn: (() => void) | undefined
        const secureContext = Tls.createSecureContext({
          cert: fs.readFileSync(fixture("server-chain.pem")),
          key: fs.readFileSync(fixture("server.key"))
        })
        const closed = yield* Deferred.make<void>()
        const server = Tls.createServer({
          SNICallback: (_name, done) => {
            goOn = () => done(null, secureContext)
            Deferred.unsafeDone(helloSeen, Exit.void)
          }
        }, (socket) => {
          socket.on("error", () => {})
          socket.once("close", () => Deferred.unsafeDone(closed, Exit.void))
        })
        yield* Effect.acquireRelease(
          Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
          () => Effect.sync(() => server.close())
        )
        const port = (server.address() as Net.AddressInfo).port
        const ctx = yield* clientContext()
        const scope = yield* Scope.make()
        const connecting = yield* Effect.fork(Scope.extend(Ssl.connect("localhost", port, ctx), scope))
        yield* Deferred.await(helloSeen)
        yield* Scope.close(scope, Exit.void)
        goOn!()
        const connection = yield* Fiber.join(connecting)
        expect((yield* connection.session).verified).toBe(true)
        // its scope had ended: the connection went at once, and the server saw it go
        yield* Deferred.await(closed)
        const open = yield* metricValue("effect_ssl_open_connections", { test, operation: "connect" })
        expect(open.total).toBe(0)
        const made = yield* metricValue("effect_ssl_handshakes_total", {
          test,
          operation: "connect",
          outcome: "success"
        })
        expect(made.total).toBe(1)
      })
    ).pipe(Effect.provide(TestLayer)))
})

describe("key logging", () => {
  it.scopedLive("lines in SSLKEYLOGFILE format go to a function or a file, and nowhere by default", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const lines: Array<string> = []
      const client = yield* clientContext()
      yield* Ssl.connect("localhost", listener.address.port, client)
      expect(lines).toEqual([])

      yield* SslContext.setKeyLog(client, (line) => lines.push(line))
      yield* Ssl.connect("localhost", listener.address.port, client)
      expect(lines.some((l) => /^CLIENT_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]{64} [0-9a-f]+$/.test(l))).toBe(true)
      expect(lines.some((l) => l.startsWith("CLIENT_TRAFFIC_SECRET_0 "))).toBe(true)

      const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-ssl-keylog-"))
      const file = nodePath.join(dir, "keys.log")
      yield* SslContext.setKeyLog(client, { file })
      yield* Ssl.connect("localhost", listener.address.port, client)
      const written = fs.readFileSync(file, "utf8").trim().split("\n")
      expect(written.length).toBeGreaterThanOrEqual(5)
      expect(written.every((l) => /^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]+$/.test(l))).toBe(true)
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("openssl s_client -keylogfile and our server log the same secrets", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      const lines: Array<string> = []
      yield* SslContext.setKeyLog(server, (line) => lines.push(line))
      const listener = yield* serveOn(server)
      const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-ssl-keylog-"))
      const file = nodePath.join(dir, "client.log")
      const peer = yield* spawnOpenssl([
        "s_client",
        "-connect",
        `127.0.0.1:${listener.address.port}`,
        "-CAfile",
        "root-ca.pem",
        "-servername",
        "localhost",
        "-keylogfile",
        file,
        "-quiet"
      ])
      yield* peer.write("hello\n")
      yield* peer.waitFor(/hello/)
      const theirs = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.startsWith("CLIENT_TRAFFIC_SECRET_0"))
      expect(theirs).toHaveLength(1)
      expect(lines).toContain(theirs[0])
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(TestLayer)))
})
