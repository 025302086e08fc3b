/**
 * What Racket's openssl gained after 5.0 (try-verify, host-name checking, ciphers, SNI, ALPN,
 * channel binding, key logging), over real handshakes.
 */
import { Port, Ssl, SslContext } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as Net from "node:net"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Tls from "node:tls"
import { serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { spawnOpenssl, sServer } from "../../core/test/helpers/Openssl.js"
import { rawPeer } from "../../core/test/helpers/RawPeers.js"
import { backTo, resources, suspended } from "../../core/test/helpers/Resources.js"

/** Accepts one connection and hands back its session and the connection, in the test's scope. */
const acceptOne = (listener: Ssl.Listener) =>
  Effect.gen(function*() {
    const done = yield* Deferred.make<Ssl.Connection, unknown>()
    const fiber = yield* Effect.forkScoped(
      Effect.flatMap(Effect.exit(Ssl.accept(listener)), (exit) => Deferred.complete(done, exit))
    )
    return { connection: Deferred.await(done), fiber }
  })

const clientWithCertificate = (chain: string, key: string) =>
  Effect.gen(function*() {
    const ctx = yield* clientContext()
    yield* SslContext.loadCertificateChain(ctx, fixture(chain))
    yield* SslContext.loadPrivateKey(ctx, fixture(key))
    return ctx
  })

describe("try-verify", () => {
  it.scopedLive("a server that asks but does not require: no certificate is accepted, unverified", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.loadVerifyRootCertificates(server, fixture("root-ca.pem"))
      yield* SslContext.setTryVerify(server, true)
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const accepted = yield* acceptOne(listener)
      yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const session = yield* Effect.flatMap(accepted.connection, (c) => c.session)
      expect(session.verified).toBe(false)
      expect(Option.isNone(session.peerCertificate)).toBe(true)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a certificate that is presented is verified", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.loadVerifyRootCertificates(server, fixture("root-ca.pem"))
      yield* SslContext.setTryVerify(server, true)
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const good = yield* acceptOne(listener)
      yield* Ssl.connect("localhost", listener.address.port, yield* clientWithCertificate("client-chain.pem", "client.key"))
      const session = yield* Effect.flatMap(good.connection, (c) => c.session)
      expect(session.verified).toBe(true)
      expect(Option.getOrThrow(session.peerCertificate).subject).toContain("CN=effect-ssl test client")

      const bad = yield* acceptOne(listener)
      yield* Effect.either(
        Ssl.connect("localhost", listener.address.port, yield* clientWithCertificate("untrusted-client.pem", "untrusted-client.key"))
      )
      const failure = yield* Effect.flip(bad.connection)
      expect(failure).toMatchObject({ _tag: "VerifyError", side: "server", reason: "UnknownIssuer" })
    }).pipe(Effect.provide(TestLayer)))
})

describe("host-name verification apart from the chain", () => {
  it.scopedLive("off: a trusted certificate for another host is accepted; the chain is still checked", () =>
    Effect.gen(function*() {
      const wrongHost = yield* serveOn(yield* serverContext("wrong-host-chain.pem", "wrong-host.key"))
      const expired = yield* serveOn(yield* serverContext("expired-chain.pem", "expired.key"))
      const client = yield* clientContext()
      const refused = yield* Effect.flip(Ssl.connect("localhost", wrongHost.address.port, client))
      expect(refused).toMatchObject({ _tag: "VerifyError", reason: "HostnameMismatch" })

      yield* SslContext.setVerifyHostname(client, false)
      const conn = yield* Ssl.connect("localhost", wrongHost.address.port, client)
      const session = yield* conn.session
      expect(session.verified).toBe(true)
      const peer = Option.getOrThrow(session.peerCertificate)
      expect(Ssl.checkHostname(peer, "example.com")).toBe(true)
      expect(Ssl.checkHostname(peer, "localhost")).toBe(false)
      expect(Ssl.peerHostnames(peer)).toEqual(["example.com"])

      const stillChecked = yield* Effect.flip(Ssl.connect("localhost", expired.address.port, client))
      expect(stillChecked).toMatchObject({ _tag: "VerifyError", reason: "Expired" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a wildcard certificate matches one label, as Racket's ssl-peer-check-hostname", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext("wildcard-chain.pem", "wildcard.key"))
      const client = yield* clientContext()
      yield* SslContext.setVerifyHostname(client, false)
      const peer = Option.getOrThrow((yield* (yield* Ssl.connect("127.0.0.1", listener.address.port, client)).session).peerCertificate)
      expect(Ssl.checkHostname(peer, "www.example.test")).toBe(true)
      expect(Ssl.checkHostname(peer, "a.b.example.test")).toBe(false)
      expect(Ssl.checkHostname(peer, "example.test")).toBe(false)
    }).pipe(Effect.provide(TestLayer)))
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

describe("SNI", () => {
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
      yield* SslContext.setServerNameCallback(server, () =>
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
          Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
        ))
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server }).pipe(
        Ssl.withHandshakeTimeout("300 millis")
      )
      const accepted = yield* Effect.fork(Effect.scoped(Effect.flip(Ssl.accept(listener))))
      const client = yield* Effect.fork(Effect.scoped(Ssl.connect("localhost", listener.address.port, yield* clientContext())))
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
      const client = yield* Effect.flip(Effect.scoped(Ssl.connect("localhost", listener.address.port, yield* clientContext())))
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
      for (const connect of [
        (port: number) => Ssl.connect("127.0.0.1", port, insecure),
        (port: number) =>
          Effect.flatMap(
            Effect.flatMap(Effect.promise(() => import("@effect-ssl/node")), ({ NodeSsl }) =>
              NodeSsl.tcpConnect("127.0.0.1", port)),
            (duplex) => Ssl.wrap(duplex, { mode: "connect", context: insecure })
          )
      ]) {
        const anonymous = yield* sServer(["-tlsextdebug"])
        const conn = yield* connect(anonymous.port)
        yield* conn.output.write("ping\n")
        yield* anonymous.peer.waitFor(/ping/)
        expect(anonymous.peer.output()).not.toContain("server name")
      }
    }).pipe(Effect.provide(TestLayer)))
})

/** `openssl s_client` to 127.0.0.1:port offering `alpn`, trusting the fixture root. */
const sClientOffering = (port: number, alpn: string) =>
  spawnOpenssl(["s_client", "-connect", `127.0.0.1:${port}`, "-alpn", alpn, "-CAfile", "root-ca.pem"])

describe("ALPN", () => {
  it.scopedLive("the server chooses by its own preference and both sides can read the choice", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setAlpn(server, ["http/1.1", "h2"])
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const accepted = yield* acceptOne(listener)
      const client = yield* clientContext()
      yield* SslContext.setAlpn(client, ["h2", "http/1.1"])
      const clientSession = yield* (yield* Ssl.connect("localhost", listener.address.port, client)).session
      const serverSession = yield* Effect.flatMap(accepted.connection, (c) => c.session)
      expect(clientSession.alpnProtocol).toEqual(Option.some("http/1.1"))
      expect(serverSession.alpnProtocol).toEqual(Option.some("http/1.1"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("against openssl s_server -alpn", () =>
    Effect.gen(function*() {
      const peer = yield* sServer(["-alpn", "h2"])
      const client = yield* clientContext()
      yield* SslContext.setAlpn(client, ["h2", "http/1.1"])
      const session = yield* (yield* Ssl.connect("localhost", peer.port, client)).session
      expect(session.alpnProtocol).toEqual(Option.some("h2"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("with nothing in common the server continues without ALPN by default (Racket's allow-no-match)", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setAlpn(server, ["h2", "http/1.1"])
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const accepted = yield* acceptOne(listener)
      const client = yield* clientContext()
      yield* SslContext.setAlpn(client, ["spdy/3", "imap"])
      const conn = yield* Ssl.connect("localhost", listener.address.port, client)
      const served = yield* accepted.connection
      expect((yield* conn.session).alpnProtocol).toEqual(Option.none())
      expect((yield* served.session).alpnProtocol).toEqual(Option.none())
      // The connection works: the bytes the server read first went on to TLS.
      yield* conn.output.write("ping\n")
      expect(yield* served.input.readLine).toEqual(Option.some("ping"))

      // The same listener still chooses when there is something in common.
      const next = yield* acceptOne(listener)
      const h2 = yield* clientContext()
      yield* SslContext.setAlpn(h2, ["spdy/3", "http/1.1", "h2"])
      const chosen = yield* (yield* Ssl.connect("localhost", listener.address.port, h2)).session
      expect(chosen.alpnProtocol).toEqual(Option.some("h2"))
      expect((yield* Effect.flatMap(next.connection, (c) => c.session)).alpnProtocol).toEqual(Option.some("h2"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("openssl s_client offering nothing in common is served without ALPN", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setAlpn(server, ["h2"])
      const listener = yield* serveOn(server)
      const peer = yield* sClientOffering(listener.address.port, "spdy/3")
      yield* peer.waitFor(/No ALPN negotiated/)
      // The echo handler answers: the connection is up.
      yield* peer.write("hello over no ALPN\n")
      yield* peer.waitFor(/^hello over no ALPN$/m)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("allowNoMatch: false refuses a client with nothing in common", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setAlpn(server, ["h2"], { allowNoMatch: false })
      const listener = yield* serveOn(server)
      const other = yield* clientContext()
      yield* SslContext.setAlpn(other, ["spdy/3"])
      const error = yield* Effect.flip(Ssl.connect("localhost", listener.address.port, other))
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "NoApplicationProtocol" })
      // A client that offers no ALPN at all is served without it.
      const plain = yield* (yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())).session
      expect(plain.alpnProtocol).toEqual(Option.none())
      const peer = yield* sClientOffering(listener.address.port, "spdy/3")
      yield* peer.waitFor(/no application protocol/)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("over Ssl.wrap, a ClientHello arriving one byte at a time is read and passed on whole", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setAlpn(server, ["h2", "http/1.1"])
      // Both ends over a pipe that holds one byte; a line goes through; each end's choice.
      const overPipe = (offer: ReadonlyArray<string>) =>
        Effect.gen(function*() {
          const [a, b] = yield* Port.pipe({ capacity: 1 })
          const served = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
            const conn = yield* Ssl.wrap(b, { mode: "accept", context: server })
            return { line: yield* conn.input.readLine, alpn: (yield* conn.session).alpnProtocol }
          })))
          const client = yield* clientContext()
          yield* SslContext.setAlpn(client, offer)
          const conn = yield* Ssl.wrap(a, { mode: "connect", hostname: "localhost", context: client })
          yield* conn.output.write("over a pipe\n")
          return { client: (yield* conn.session).alpnProtocol, server: yield* Fiber.join(served) }
        })
      expect(yield* overPipe(["spdy/3"])).toEqual({
        client: Option.none(),
        server: { line: Option.some("over a pipe"), alpn: Option.none() }
      })
      expect(yield* overPipe(["http/1.1"])).toEqual({
        client: Option.some("http/1.1"),
        server: { line: Option.some("over a pipe"), alpn: Option.some("http/1.1") }
      })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("an accept waiting for a ClientHello is interruptible and releases the socket", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setAlpn(server, ["h2"])
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const baseline = yield* resources
      // Half a ClientHello record header, then silence.
      const peer = yield* Effect.fork(rawPeer(listener.address.port, new Uint8Array([22, 3]), "silent"))
      // The TCP connection is taken first, so that the suspended handshake is the offer's read.
      const handshake = yield* listener.acceptTransport
      const accepting = yield* Effect.fork(Effect.scoped(handshake))
      yield* suspended(accepting)
      yield* Fiber.interrupt(accepting)
      // The peer's socket is closed by the server, and nothing is left open.
      expect(yield* Fiber.join(peer)).toBe(0)
      yield* backTo(baseline)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a ClientHello in many records is left to OpenSSL: chosen when something overlaps, refused otherwise", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setAlpn(server, ["h2"])
      const listener = yield* serveOn(server)
      // A proxy that re-frames the client's ClientHello into 1-byte handshake records.
      const proxy = yield* Effect.acquireRelease(
        Effect.async<Net.Server>((resume) => {
          const proxy = Net.createServer((client) => {
            const upstream = Net.connect({ host: "127.0.0.1", port: listener.address.port })
            client.on("error", () => {})
            upstream.on("error", () => {})
            let first = true
            let head = Buffer.alloc(0)
            client.on("data", (data: Buffer) => {
              if (!first) return void upstream.write(data)
              // The whole first record, however TCP delivers it.
              head = Buffer.concat([head, data])
              if (head.length < 5 || head.length < 5 + head.readUInt16BE(3)) return
              first = false
              const chunk = head
              const length = chunk.readUInt16BE(3)
              const records = Array.from(chunk.subarray(5, 5 + length), (byte) => Buffer.from([22, 3, 1, 0, 1, byte]))
              upstream.write(Buffer.concat([...records, chunk.subarray(5 + length)]))
            })
            upstream.pipe(client)
            client.on("close", () => upstream.destroy())
            upstream.on("close", () => client.destroy())
          })
          proxy.listen(0, "127.0.0.1", () => resume(Effect.succeed(proxy)))
        }),
        (proxy) => Effect.sync(() => proxy.close())
      )
      const port = (proxy.address() as Net.AddressInfo).port
      const connect = (offer: string) =>
        Effect.async<string | false | null, Error>((resume) => {
          const socket = Tls.connect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false, ALPNProtocols: [offer] })
          socket.once("secureConnect", () => {
            resume(Effect.succeed(socket.alpnProtocol))
            socket.destroy()
          })
          socket.once("error", (error) => resume(Effect.fail(error)))
        })
      expect(yield* connect("h2")).toBe("h2")
      const refused = yield* Effect.flip(connect("spdy/3"))
      expect(refused.message).toMatch(/no application protocol/)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("allowNoMatch must be a boolean", () =>
    Effect.gen(function*() {
      const server = yield* SslContext.makeServer("auto")
      const error = yield* Effect.flip(SslContext.setAlpn(server, ["h2"], { allowNoMatch: "yes" as unknown as boolean }))
      expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "allowNoMatch" })
    }))
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
        // Asked twice: node:tls hands out a peer certificate only once (see nodeTls.ts).
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
        "s_client", "-connect", `127.0.0.1:${listener.address.port}`, "-CAfile", "root-ca.pem",
        "-servername", "localhost", "-keylogfile", file, "-quiet"
      ])
      yield* peer.write("hello\n")
      yield* peer.waitFor(/hello/)
      const theirs = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.startsWith("CLIENT_TRAFFIC_SECRET_0"))
      expect(theirs).toHaveLength(1)
      expect(lines).toContain(theirs[0])
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(TestLayer)))
})
