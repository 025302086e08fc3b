/**
 * What the handshake negotiates, over real handshakes: protocol versions (pinned, mismatched,
 * unsupported), cipher suites (chosen, invalid, ephemeral Diffie-Hellman), SNI (sent, received,
 * and the server name callback), session resumption, and channel bindings of the result.
 */
import { Port, type Protocol, Ssl, SslContext, SslError } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { acceptOne, localListener, serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { spawnOpenssl, sServer } from "../../core/test/helpers/Openssl.js"
import { silentServer } from "../../core/test/helpers/RawPeers.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/** Connects a client with `clientProtocol` to a fresh server with `serverProtocol`; both sessions. */
const negotiate = (clientProtocol: Protocol.Protocol, serverProtocol: Protocol.Protocol) =>
  Effect.gen(function*() {
    const listener = yield* Ssl.listen(0, {
      hostname: "127.0.0.1",
      context: yield* serverContext("server-chain.pem", "server.key", serverProtocol)
    })
    const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
      const conn = yield* Ssl.accept(listener)
      const line = yield* conn.input.readLine
      yield* conn.output.write(`${Option.getOrElse(line, () => "")} back\n`)
      return yield* conn.session
    })))
    const client = yield* Effect.either(Effect.gen(function*() {
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext(clientProtocol))
      yield* conn.output.write("there\n")
      const reply = yield* conn.input.readLine
      return { session: yield* conn.session, reply }
    }))
    const serverResult = yield* Effect.either(Fiber.join(server))
    return { client, server: serverResult }
  })

describe("protocols", () => {
  const pairs: ReadonlyArray<readonly [Protocol.Protocol, Protocol.Protocol, string]> = [
    ["auto", "auto", "TLSv1.3"],
    ["sslv2-or-v3", "auto", "TLSv1.3"],
    ["secure", "auto", "TLSv1.3"],
    ["tls1.2", "auto", "TLSv1.2"],
    ["auto", "tls1.2", "TLSv1.2"],
    ["tls1.2", "tls1.2", "TLSv1.2"],
    ["tls1.3", "auto", "TLSv1.3"],
    ["auto", "tls1.3", "TLSv1.3"],
    ["tls", "tls", "TLSv1"],
    ["tls1", "tls1", "TLSv1"],
    ["tls1.1", "tls1.1", "TLSv1.1"]
  ]
  for (const [client, server, expected] of pairs) {
    it.scopedLive(`client "${client}" with server "${server}" negotiates ${expected}`, () =>
      Effect.gen(function*() {
        const result = yield* negotiate(client, server)
        if (result.client._tag === "Left") return expect.fail(`client failed: ${result.client.left.message}`)
        if (result.server._tag === "Left") return expect.fail(`server failed: ${result.server.left.message}`)
        expect(result.client.right.session.protocol).toBe(expected)
        expect(result.client.right.session.verified).toBe(true)
        expect(result.server.right.protocol).toBe(expected)
        expect(result.client.right.reply).toEqual(Option.some("there back"))
        expect(result.client.right.session.cipher).not.toBe("")
        expect(result.client.right.session.cipher).toBe(result.server.right.cipher)
      }).pipe(Effect.provide(TestLayer)))
  }

  const mismatches: ReadonlyArray<readonly [Protocol.Protocol, Protocol.Protocol]> = [
    ["tls1.2", "tls1.3"],
    ["tls1.3", "tls1.2"],
    ["tls1", "auto"],
    ["auto", "tls1.1"]
  ]
  for (const [client, server] of mismatches) {
    it.scopedLive(`client "${client}" with server "${server}": HandshakeError ProtocolVersion on both sides`, () =>
      Effect.gen(function*() {
        const result = yield* negotiate(client, server)
        if (result.client._tag === "Right") return expect.fail("the client connected")
        if (result.server._tag === "Right") return expect.fail("the server accepted")
        // the server finds no version in common and says so with a protocol_version alert
        expect(result.client.left).toMatchObject({
          _tag: "HandshakeError",
          reason: "ProtocolVersion",
          side: "client",
          code: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION"
        })
        expect(result.server.left).toMatchObject({
          _tag: "HandshakeError",
          reason: "ProtocolVersion",
          side: "server",
          code: "ERR_SSL_UNSUPPORTED_PROTOCOL"
        })
        expect(result.client.left.message).toContain("no TLS version in common")
      }).pipe(Effect.provide(TestLayer)))
  }

  for (const protocol of ["sslv2", "sslv3"] as const) {
    it.scopedLive(`"${protocol}" fails with UnsupportedProtocolError before touching the network`, () =>
      Effect.gen(function*() {
        const silent = yield* silentServer
        const connectError = yield* Effect.flip(Ssl.connect("127.0.0.1", silent.port, protocol))
        expect(connectError).toBeInstanceOf(SslError.UnsupportedProtocolError)
        expect(connectError).toMatchObject({ protocol })
        expect(connectError.message).toContain(protocol)
        expect(silent.connections()).toBe(0)

        const listenError = yield* Effect.flip(Ssl.listen(0, { hostname: "127.0.0.1", context: protocol }))
        expect(listenError).toMatchObject({ _tag: "UnsupportedProtocolError", protocol })

        const [a] = yield* Port.pipe()
        const wrapError = yield* Effect.flip(Ssl.wrap(a, { mode: "connect", protocol }))
        expect(wrapError).toMatchObject({ _tag: "UnsupportedProtocolError", protocol })
        expect(yield* Effect.flip(SslContext.makeServer(protocol))).toMatchObject({ _tag: "UnsupportedProtocolError" })
      }).pipe(Effect.provide(TestLayer)))
  }
})

describe("ciphers", () => {
  it.scopedLive("an invalid cipher string fails when it is set, not at the first handshake", () =>
    Effect.gen(function*() {
      const ctx = yield* SslContext.makeClient()
      const error = yield* Effect.flip(SslContext.setCiphers(ctx, "NO-SUCH-CIPHER"))
      expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "ciphers" })
      expect(error.message).toContain("OpenSSL rejects it")
      const suites = yield* Effect.flip(SslContext.setCipherSuites(ctx, "TLS_NO_SUCH_SUITE"))
      expect(suites).toMatchObject({ _tag: "InvalidArgumentError", argument: "cipherSuites" })
      expect(ctx.state.ciphers).toBeUndefined()
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("the chosen TLS 1.2 cipher and TLS 1.3 suite are the ones negotiated", () =>
    Effect.gen(function*() {
      const server12 = yield* serverContext("server-chain.pem", "server.key", "tls1.2")
      yield* SslContext.setCiphers(server12, "ECDHE-RSA-AES128-GCM-SHA256")
      const l12 = yield* serveOn(server12)
      const s12 = yield* (yield* Ssl.connect("localhost", l12.address.port, yield* clientContext())).session
      expect(s12.protocol).toBe("TLSv1.2")
      expect(s12.cipher).toBe("ECDHE-RSA-AES128-GCM-SHA256")

      const server13 = yield* serverContext()
      yield* SslContext.setCipherSuites(server13, "TLS_CHACHA20_POLY1305_SHA256")
      const l13 = yield* serveOn(server13)
      const s13 = yield* (yield* Ssl.connect("localhost", l13.address.port, yield* clientContext())).session
      expect(s13.protocol).toBe("TLSv1.3")
      expect(s13.cipher).toBe("TLS_CHACHA20_POLY1305_SHA256")
    }).pipe(Effect.provide(TestLayer)))
})

// Ephemeral Diffie-Hellman (DHE) cipher suites work with no setup, as OpenSSL's own servers
// provide them (Racket's test-ephemeral): a TLS 1.2 client that offers only a DHE suite completes
// its handshake with an RSA server, and both sessions name the suite.
const suite = "DHE-RSA-AES128-GCM-SHA256"

/** Accepts one connection and answers one line; the server's session. */
const answerOnce = (listening: Ssl.Listener) =>
  Effect.fork(Effect.scoped(Effect.gen(function*() {
    const conn = yield* Ssl.accept(listening)
    const line = yield* conn.input.readLine
    yield* conn.output.write(`got ${Option.getOrElse(line, () => "nothing")}\n`)
    return yield* conn.session
  })))

describe(`a TLS 1.2 client that offers only ${suite}`, () => {
  it.scopedLive("openssl s_client: the handshake completes with a DH key exchange", () =>
    Effect.gen(function*() {
      // The RSA fixture chain, set up as every other (nothing about DHE).
      const listening = yield* localListener
      const server = yield* answerOnce(listening)
      const client = yield* spawnOpenssl([
        "s_client",
        "-tls1_2",
        "-cipher",
        suite,
        "-connect",
        `127.0.0.1:${listening.address.port}`,
        "-servername",
        "localhost",
        "-CAfile",
        "root-ca.pem",
        "-verify_return_error"
      ])
      yield* client.waitFor(new RegExp(`Cipher is ${suite}`))
      yield* client.write("ping\n")
      yield* client.waitFor(/^got ping$/m)
      // The key exchange was finite-field Diffie-Hellman, at a size OpenSSL's level 2 accepts.
      const [, bits] = yield* client.waitFor(/Server Temp Key: DH, (\d+) bits/)
      expect(Number(bits)).toBeGreaterThanOrEqual(2048)
      const session = yield* Fiber.join(server)
      expect(session).toMatchObject({ protocol: "TLSv1.2", cipher: suite })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("effect-ssl's own client (SslContext.setCiphers): both sessions say DHE", () =>
    Effect.gen(function*() {
      const listening = yield* localListener
      const server = yield* answerOnce(listening)
      const context = yield* clientContext("tls1.2")
      yield* SslContext.setCiphers(context, suite)
      const conn = yield* Ssl.connect("localhost", listening.address.port, context)
      yield* conn.output.write("ping\n")
      expect(yield* conn.input.readLine).toEqual(Option.some("got ping"))
      expect(yield* conn.session).toMatchObject({ protocol: "TLSv1.2", cipher: suite, verified: true })
      expect(yield* Fiber.join(server)).toMatchObject({ protocol: "TLSv1.2", cipher: suite })
    }).pipe(Effect.provide(TestLayer)))
})

describe("SNI", () => {
  it.scopedLive("a session reads as a plain object: spread and JSON see every member, the peer certificate too", () =>
    Effect.gen(function*() {
      const result = yield* negotiate("auto", "auto")
      if (result.client._tag === "Left") return expect.fail(`client failed: ${result.client.left.message}`)
      const session = result.client.right.session
      expect(Object.keys(session).sort()).toEqual([
        "alpnProtocol",
        "cipher",
        "localAddress",
        "peerCertificate",
        "protocol",
        "remoteAddress",
        "resumed",
        "servername",
        "verified"
      ])
      const copy = { ...session }
      expect(Option.getOrThrow(copy.peerCertificate).der).toEqual(Option.getOrThrow(session.peerCertificate).der)
      expect(JSON.parse(JSON.stringify(session)).peerCertificate).toMatchObject({ _tag: "Some" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a host name is sent and received; an IP address sends none", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() })
      const port = listener.address.port
      const serverSession = Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => conn.session)))

      const byName = yield* serverSession
      const nameClient = yield* Ssl.connect("localhost", port, yield* clientContext())
      expect((yield* nameClient.session).servername).toEqual(Option.some("localhost"))
      expect((yield* Fiber.join(byName)).servername).toEqual(Option.some("localhost"))

      const byIp = yield* serverSession
      const ipClient = yield* Ssl.connect("127.0.0.1", port, yield* clientContext())
      expect((yield* ipClient.session).servername).toEqual(Option.none())
      expect((yield* Fiber.join(byIp)).servername).toEqual(Option.none())
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a server name callback picks the context by the name the client asked for", () =>
    Effect.gen(function*() {
      const rotated = yield* serverContext("other-server-chain.pem", "other-server.key")
      const server = yield* serverContext()
      const asked: Array<string> = []
      yield* SslContext.setServerNameCallback(server, (name) =>
        Effect.sync(() => {
          asked.push(name)
          return name === "localhost" ? Option.some(rotated) : Option.none()
        }))
      const listener = yield* serveOn(server)
      const byName = yield* (yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())).session
      expect(Option.getOrThrow(byName.peerCertificate).subject).toContain("O=effect-ssl Rotated")
      // An IP literal sends no SNI, so the callback is not asked and the default context serves.
      const byIp = yield* (yield* Ssl.connect("127.0.0.1", listener.address.port, yield* clientContext())).session
      expect(Option.getOrThrow(byIp.peerCertificate).subject).not.toContain("Rotated")
      expect(asked).toEqual(["localhost"])
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a server name callback that hangs is interrupted when its handshake times out", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      yield* SslContext.setServerNameCallback(
        server,
        () =>
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          )
      )
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server }).pipe(
        Ssl.withHandshakeTimeout("300 millis")
      )
      const accepted = yield* Effect.fork(Effect.scoped(Effect.flip(Ssl.accept(listener))))
      const client = yield* Effect.fork(
        Effect.scoped(Ssl.connect("localhost", listener.address.port, yield* clientContext()))
      )
      yield* Deferred.await(started)
      expect(yield* Fiber.join(accepted)).toMatchObject({ _tag: "HandshakeError", reason: "Timeout" })
      yield* Deferred.await(interrupted)
      yield* Fiber.interrupt(client)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a server name callback that is interrupted on its own fails the handshake at once", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      const gate = yield* Deferred.make<Option.Option<SslContext.ServerContext>>()
      yield* Deferred.interrupt(gate)
      yield* SslContext.setServerNameCallback(server, () => Deferred.await(gate))
      // A timeout far longer than the test: only a prompt failure ends it.
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server }).pipe(
        Ssl.withHandshakeTimeout("1 hour")
      )
      const accepted = yield* Effect.fork(Effect.scoped(Effect.flip(Ssl.accept(listener))))
      const client = yield* Effect.flip(
        Effect.scoped(Ssl.connect("localhost", listener.address.port, yield* clientContext()))
      )
      expect(client._tag).toBe("HandshakeError")
      const error = yield* Fiber.join(accepted)
      expect(error._tag).toBe("HandshakeError")
      expect(error).not.toMatchObject({ reason: "Timeout" })
      expect(error.message).toContain("server name callback")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("tls-server-end-point names the certificate SNI chose, on both ends", () =>
    Effect.gen(function*() {
      const rotated = yield* serverContext("other-server-chain.pem", "other-server.key")
      const server = yield* serverContext()
      yield* SslContext.setServerNameCallback(server, () => Effect.succeed(Option.some(rotated)))
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const accepted = yield* acceptOne(listener)
      const client = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const ours = yield* client.channelBinding("tls-server-end-point")
      const theirs = yield* (yield* accepted.connection).channelBinding("tls-server-end-point")
      expect(Buffer.from(theirs).toString("hex")).toBe(Buffer.from(ours).toString("hex"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("openssl s_server -tlsextdebug sees the server name for a host name, none for an IP or a wrap without one", () =>
    Effect.gen(function*() {
      const client = yield* clientContext()
      const named = yield* sServer(["-tlsextdebug"])
      yield* Ssl.connect("localhost", named.port, client)
      yield* named.peer.waitFor(/TLS client extension "server name"/)

      const insecure = yield* SslContext.makeClient()
      yield* SslContext.setVerify(insecure, false)
      for (
        const connect of [
          (port: number) => Ssl.connect("127.0.0.1", port, insecure),
          (port: number) =>
            Effect.flatMap(
              Effect.flatMap(
                Effect.promise(() => import("@effect-ssl/node")),
                ({ NodeSsl }) => NodeSsl.tcpConnect("127.0.0.1", port)
              ),
              (duplex) => Ssl.wrap(duplex, { mode: "connect", context: insecure })
            )
        ]
      ) {
        const anonymous = yield* sServer(["-tlsextdebug"])
        const conn = yield* connect(anonymous.port)
        yield* conn.output.write("ping\n")
        yield* anonymous.peer.waitFor(/ping/)
        expect(anonymous.peer.output()).not.toContain("server name")
      }
    }).pipe(Effect.provide(TestLayer)))
})

describe("session resumption", () => {
  for (const verify of [false, true]) {
    it.scopedLive(`TLS 1.2: s_client -reconnect resumes its session (client certificates ${verify ? "required" : "not asked"})`, () =>
      Effect.gen(function*() {
        const ctx = yield* serverContext()
        if (verify) {
          yield* SslContext.setVerify(ctx, true)
          yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
        }
        const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: ctx })
        const accepted = yield* Queue.unbounded<Either.Either<Ssl.SessionInfo, string>>()
        yield* Effect.forkScoped(Effect.forever(Effect.scoped(Effect.matchEffect(Ssl.accept(listener), {
          onFailure: (error) => Queue.offer(accepted, Either.left(error.message)),
          onSuccess: (conn) =>
            Effect.zipRight(
              Effect.flatMap(conn.session, (session) => Queue.offer(accepted, Either.right(session))),
              Effect.either(conn.input.readAll)
            )
        }))))
        const client = yield* spawnOpenssl([
          "s_client",
          "-tls1_2",
          "-reconnect",
          "-connect",
          `127.0.0.1:${listener.address.port}`,
          "-CAfile",
          "root-ca.pem",
          "-servername",
          "localhost",
          ...(verify ? ["-cert", "client.pem", "-key", "client.key", "-cert_chain", "intermediate-ca.pem"] : [])
        ])
        yield* client.endInput
        // the first connection and five reconnections, each accepted
        const outcomes = Chunk.toReadonlyArray(
          yield* Queue.takeN(accepted, 6).pipe(
            // a guard: s_client gives up at the first failed reconnection, so 6 may never come
            Effect.timeoutFail({
              duration: "10 seconds",
              onTimeout: () => new Error(`not 6 connections; s_client said:\n${client.output()}`)
            }),
            Effect.catchAll((error) =>
              Effect.flatMap(
                Queue.takeAll(accepted),
                (got) => Effect.dieMessage(`${error.message}\naccepted: ${JSON.stringify(Chunk.toReadonlyArray(got))}`)
              )
            )
          )
        )
        expect(outcomes.filter(Either.isLeft)).toEqual([])
        // a resumed session still knows (and vouches for) the client's certificate
        for (const outcome of outcomes) expect(Either.getOrThrow(outcome).verified).toBe(verify)
        yield* client.exited
        // one full handshake, then five resumptions of the same session
        expect(client.output().match(/^New, TLSv1\.2/gm)?.length).toBe(1)
        expect(client.output().match(/^Reused, TLSv1\.2/gm)?.length).toBe(5)
      }).pipe(Effect.provide(TestLayer)))
  }
})

describe("channel binding", () => {
  it.scopedLive("after the connection's scope, tls-exporter fails saying the connection is closed", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const client = yield* clientContext()
      const closed = yield* Effect.scoped(Ssl.connect("localhost", listener.address.port, client))
      const error = yield* Effect.flip(closed.channelBinding("tls-exporter"))
      expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "type" })
      expect(error.message).toContain("the connection is closed")
    }).pipe(Effect.provide(TestLayer)))

  for (const protocol of ["tls1.2", "tls1.3"] as const) {
    it.scopedLive(`is equal on both ends (${protocol})`, () =>
      Effect.gen(function*() {
        const listener = yield* Ssl.listen(0, {
          hostname: "127.0.0.1",
          context: yield* serverContext("server-chain.pem", "server.key", protocol)
        })
        const accepted = yield* acceptOne(listener)
        const client = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext(protocol))
        const server = yield* accepted.connection
        const types: ReadonlyArray<Ssl.ChannelBindingType> = protocol === "tls1.2"
          ? ["tls-unique", "tls-exporter", "tls-server-end-point"]
          : ["tls-exporter", "tls-server-end-point"]
        // Asked twice: node:tls hands out a peer certificate only once (see verify.ts).
        for (const type of [...types, ...types]) {
          const a = yield* client.channelBinding(type)
          const b = yield* server.channelBinding(type)
          expect(Buffer.from(a).toString("hex"), type).toBe(Buffer.from(b).toString("hex"))
          expect(a.length, type).toBe(type === "tls-unique" ? 12 : 32)
        }
        if (protocol === "tls1.3") {
          const error = yield* Effect.flip(client.channelBinding("tls-unique"))
          expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "type" })
        }
        yield* Fiber.join(accepted.fiber)
      }).pipe(Effect.provide(TestLayer)))
  }
})

describe("node:tls, as a server's handshake relies on it", () => {
  // handshakeIdle.ts lays a server connection's groundwork from here: without the hook nothing
  // breaks (the groundwork is laid at the end), but the time saved is gone.
  it.live("a server socket's handle calls onhandshakestart once, and an immediate queued there runs before 'secure'", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const tcp = Net.createServer((raw) => {
        const socket = new Tls.TLSSocket(raw, {
          isServer: true,
          secureContext: Tls.createSecureContext({
            cert: Fs.readFileSync(fixture("server-chain.pem")),
            key: Fs.readFileSync(fixture("server.key"))
          })
        })
        socket.on("error", () => {})
        const handle = (socket as unknown as { _handle: { onhandshakestart: (now: number) => void } })._handle
        const original = handle.onhandshakestart
        expect(typeof original).toBe("function")
        handle.onhandshakestart = function(now) {
          events.push("handshake start")
          original.call(this, now)
          setImmediate(() => events.push("immediate"))
        }
        socket.once("secure", () => {
          events.push("secure")
          socket.end()
        })
      })
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void tcp.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.async<void>((resume) => void tcp.close(() => resume(Effect.void)))
      )
      const port = (tcp.address() as Net.AddressInfo).port
      yield* Effect.async<void, Error>((resume) => {
        const client = Tls.connect({
          host: "127.0.0.1",
          port,
          ca: Fs.readFileSync(fixture("root-ca.pem")),
          servername: "localhost"
        })
        client.on("error", (error) => resume(Effect.fail(error)))
        client.on("close", () => resume(Effect.void))
        client.resume()
      })
      expect(events).toEqual(["handshake start", "immediate", "secure"])
    }).pipe(Effect.scoped))
})
