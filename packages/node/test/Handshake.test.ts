/**
 * What a connection negotiates and reports: protocol versions (pinned, mismatched, unsupported),
 * SNI, addresses.
 */
import { Port, type Protocol, Ssl, SslContext, SslError } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
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

describe("session", () => {
  it.scopedLive("SNI: a host name is sent and received; an IP address sends none", () =>
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

  it.scopedLive("local and remote addresses match the listener and the client's socket", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() })
      expect(listener.address.hostname).toBe("127.0.0.1")
      expect(listener.address.port).toBeGreaterThan(0)
      const server = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => conn.session)))
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const client = yield* conn.session
      const accepted = yield* Fiber.join(server)
      expect(client.remoteAddress).toEqual({ hostname: "127.0.0.1", port: listener.address.port })
      expect(accepted.localAddress).toEqual({ hostname: "127.0.0.1", port: listener.address.port })
      expect(client.localAddress.hostname).toBe("127.0.0.1")
      expect(client.localAddress.port).toBeGreaterThan(0)
      expect(client.localAddress.port).not.toBe(listener.address.port)
      expect(accepted.remoteAddress).toEqual(client.localAddress)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("IPv6: [::1] and ::1 connect and verify against the IP SAN", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "::1", context: yield* serverContext() })
      expect(listener.address.hostname).toBe("::1")
      yield* Effect.forkScoped(Ssl.serve(listener, (conn) => Effect.asVoid(conn.input.readAll)))
      for (const host of ["::1", "[::1]"]) {
        const conn = yield* Ssl.connect(host, listener.address.port, yield* clientContext())
        const session = yield* conn.session
        expect(session.verified).toBe(true)
        expect(session.servername).toEqual(Option.none())
        expect(session.remoteAddress).toEqual({ hostname: "::1", port: listener.address.port })
      }
    }).pipe(Effect.provide(TestLayer)))
})
