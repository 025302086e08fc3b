/**
 * Connection failures, each its own typed error: nothing listening, no such host, bad ports,
 * peers that do not speak TLS, peers that vanish mid-stream; and a listener that outlives its
 * bad clients. Nothing here may reach the process as an uncaught exception.
 */
import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Net from "node:net"
import { echo, serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { sServer } from "../../core/test/helpers/Openssl.js"
import { freePort, silentServer } from "../../core/test/helpers/RawPeers.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/**
 * A node:net server on 127.0.0.1 that runs `onConnection` for every client; its sockets are
 * destroyed with the scope.
 */
const plainServer = (
  onConnection: (socket: Net.Socket) => void
): Effect.Effect<number, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.async<{ server: Net.Server; sockets: Set<Net.Socket> }>((resume) => {
        const sockets = new Set<Net.Socket>()
        const server = Net.createServer((socket) => {
          sockets.add(socket)
          socket.on("error", () => {})
          socket.on("close", () => sockets.delete(socket))
          onConnection(socket)
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
      }),
      ({ server, sockets }) =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    ),
    ({ server }) => (server.address() as Net.AddressInfo).port
  )

/** Bytes from a fixed-seed generator: "random", but the same on every run. */
const noise = (n: number, seed = 0x2545f491): Uint8Array => {
  const out = new Uint8Array(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/**
 * A TCP relay from a local port to `target`; `reset` aborts the client-facing side with a TCP RST
 * (the way a crashed host or a middlebox ends a connection).
 */
const resettingRelay = (target: number) =>
  Effect.gen(function*() {
    const downstream = yield* Deferred.make<Net.Socket>()
    const port = yield* plainServer((client) => {
      const upstream = Net.connect({ host: "127.0.0.1", port: target })
      upstream.on("error", () => client.destroy())
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
      client.pipe(upstream)
      upstream.pipe(client)
      Deferred.unsafeDone(downstream, Exit.succeed(client))
    })
    const reset = Effect.flatMap(Deferred.await(downstream), (client) => Effect.sync(() => client.resetAndDestroy()))
    return { port, reset }
  })

describe("connecting", () => {
  it.live("nothing listening: ConnectError Refused", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const error = yield* Effect.flip(Effect.scoped(Ssl.connect("127.0.0.1", port, yield* clientContext())))
      expect(error).toBeInstanceOf(SslError.ConnectError)
      expect(error).toMatchObject({ reason: "Refused", hostname: "127.0.0.1", port, code: "ECONNREFUSED" })
      expect(error.message).toContain(`127.0.0.1:${port}`)
      const tcpError = yield* Effect.flip(Effect.scoped(NodeSsl.tcpConnect("127.0.0.1", port)))
      expect(tcpError).toMatchObject({ _tag: "ConnectError", reason: "Refused" })
    }).pipe(Effect.provide(TestLayer)))

  it.live("unknown host: ConnectError UnknownHost", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Ssl.connect("no-such-host.invalid", 443)))
      expect(error).toMatchObject({ _tag: "ConnectError", reason: "UnknownHost", hostname: "no-such-host.invalid" })
      expect(error.message).toContain("no-such-host.invalid")
    }).pipe(Effect.provide(TestLayer)))

  it.live("a port out of range or not an integer: InvalidArgumentError naming the port", () =>
    Effect.gen(function*() {
      for (const port of [0, 70000, 1.5, -1, Number.NaN, 65536]) {
        const connectError = yield* Effect.flip(Effect.scoped(Ssl.connect("127.0.0.1", port)))
        expect(connectError).toMatchObject({ _tag: "InvalidArgumentError", argument: "port" })
        expect(connectError.message).toContain("port")
        const tcpError = yield* Effect.flip(Effect.scoped(NodeSsl.tcpConnect("127.0.0.1", port)))
        expect(tcpError).toMatchObject({ _tag: "InvalidArgumentError", argument: "port" })
      }
      for (const port of [70000, 1.5, -1]) {
        const listenError = yield* Effect.flip(Effect.scoped(Ssl.listen(port, { context: yield* serverContext() })))
        expect(listenError).toMatchObject({ _tag: "InvalidArgumentError", argument: "port" })
        const tcpError = yield* Effect.flip(Effect.scoped(NodeSsl.tcpListen(port)))
        expect(tcpError).toMatchObject({ _tag: "InvalidArgumentError", argument: "port" })
      }
    }).pipe(Effect.provide(TestLayer)))
})

describe("a peer that is not TLS", () => {
  it.live("an HTTP server answering 400: HandshakeError NotTls", () =>
    Effect.gen(function*() {
      const port = yield* plainServer((socket) => {
        socket.once("data", () => socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
      })
      const error = yield* Effect.flip(Effect.scoped(Ssl.connect("localhost", port, yield* clientContext())))
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "NotTls", side: "client" })
      expect(error.message).toContain(`localhost:${port}`)
    }).pipe(Effect.scoped, Effect.provide(TestLayer)))

  it.live("a server sending random bytes: HandshakeError NotTls", () =>
    Effect.gen(function*() {
      const port = yield* plainServer((socket) => {
        socket.once("data", () => socket.write(noise(512)))
      })
      const error = yield* Effect.flip(Effect.scoped(Ssl.connect("localhost", port, yield* clientContext())))
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "NotTls", side: "client" })
    }).pipe(Effect.scoped, Effect.provide(TestLayer)))

  it.live("a server that hangs up at once: HandshakeError PeerClosed", () =>
    Effect.gen(function*() {
      const port = yield* plainServer((socket) => void socket.end())
      const error = yield* Effect.flip(Effect.scoped(Ssl.connect("localhost", port, yield* clientContext())))
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "PeerClosed", side: "client" })
    }).pipe(Effect.scoped, Effect.provide(TestLayer)))

  it.live("a silent server: HandshakeError Timeout after Ssl.withHandshakeTimeout", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const started = Date.now()
      const error = yield* Effect.flip(Effect.scoped(
        Ssl.connect("localhost", silent.port, yield* clientContext()).pipe(Ssl.withHandshakeTimeout("300 millis"))
      ))
      const elapsed = Date.now() - started
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "Timeout", side: "client" })
      expect(elapsed).toBeGreaterThanOrEqual(290)
      expect(elapsed).toBeLessThan(Duration.toMillis("5 seconds"))
      expect(silent.connections()).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(TestLayer)))

  it.live("the server side: HTTP, noise, silence and hang-ups fail accept with typed errors", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() }).pipe(
        Ssl.withHandshakeTimeout("300 millis")
      )
      const acceptWith = (client: (socket: Net.Socket) => void) =>
        Effect.gen(function*() {
          const accepting = yield* Effect.fork(Effect.scoped(Effect.flip(Ssl.accept(listener))))
          const socket = Net.connect({ host: "127.0.0.1", port: listener.address.port })
          socket.on("error", () => {})
          socket.on("connect", () => client(socket))
          return yield* Effect.ensuring(Fiber.join(accepting), Effect.sync(() => socket.destroy()))
        })
      expect(yield* acceptWith((s) => s.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))).toMatchObject({
        _tag: "HandshakeError",
        reason: "NotTls",
        side: "server",
        code: "ERR_SSL_HTTP_REQUEST"
      })
      expect(yield* acceptWith((s) => s.write(noise(512, 7)))).toMatchObject({ _tag: "HandshakeError", reason: "NotTls" })
      expect(yield* acceptWith(() => {})).toMatchObject({ _tag: "HandshakeError", reason: "Timeout", side: "server" })
      expect(yield* acceptWith((s) => s.end())).toMatchObject({ _tag: "HandshakeError", reason: "PeerClosed" })
    }).pipe(Effect.scoped, Effect.provide(TestLayer)))
})

describe("a peer that goes away mid-stream", () => {
  it.scopedLive("a TCP reset after the handshake: IoError Reset on the next read, then on write", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const relay = yield* resettingRelay(listener.address.port)
      const conn = yield* Ssl.connect("localhost", relay.port, yield* clientContext())
      yield* conn.output.write("before\n")
      expect(yield* conn.input.readLine).toEqual(Option.some("before"))
      yield* relay.reset
      const readError = yield* Effect.flip(conn.input.read())
      expect(readError).toMatchObject({ _tag: "IoError", operation: "read", reason: "Reset", code: "ECONNRESET" })
      const writeError = yield* Effect.flip(conn.output.write("after\n"))
      expect(writeError).toBeInstanceOf(SslError.IoError)
      expect(writeError).toMatchObject({ operation: "write" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("openssl s_server killed (SIGKILL) mid-transfer: the writer and the reader fail with IoError", () =>
    Effect.gen(function*() {
      const { peer, port } = yield* sServer(["-rev"])
      const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
      yield* conn.output.write("ping\n")
      expect(yield* conn.input.readLine).toEqual(Option.some("gnip"))
      // a writer that never stops (and never reads): s_server dies with bytes unread
      const line = new Uint8Array(16 * 1024).fill(0x61)
      line[line.length - 1] = 0x0a
      const writer = yield* Effect.fork(Effect.forever(conn.output.write(line)))
      yield* peer.kill("SIGKILL")
      expect(yield* peer.exited).toBe("SIGKILL")
      // The kernel ends s_server's socket with a RST (it held unread bytes) or a FIN; which of
      // EPIPE, ECONNRESET or a truncated end our socket sees first varies from run to run. Each
      // is an IoError, on both ports; none is a clean end of input or a defect.
      const writeError = yield* Effect.flip(Fiber.join(writer))
      expect(writeError).toBeInstanceOf(SslError.IoError)
      expect(writeError).toMatchObject({ operation: "write" })
      expect(["Reset", "BrokenPipe"]).toContain((writeError as SslError.IoError).reason)
      // what s_server had sent is still read; then the input fails (it never just ends)
      const readError = yield* Effect.flip(Stream.runDrain(conn.input.stream))
      expect(readError).toBeInstanceOf(SslError.IoError)
      expect(readError).toMatchObject({ operation: "read" })
      expect(["Reset", "BrokenPipe", "TruncatedEof"]).toContain((readError as SslError.IoError).reason)
    }).pipe(Effect.provide(TestLayer)))
})

describe("a listener outlives its bad clients", () => {
  it.scopedLive("after a garbage client and a client that fails verification, a good client is served", () =>
    Effect.gen(function*() {
      const ctx = yield* serverContext()
      yield* SslContext.setVerify(ctx, true)
      yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
      const listener = yield* serveOn(ctx, echo)
      const port = listener.address.port

      // 1. garbage over plain TCP: the server drops it
      const garbage = yield* Effect.scoped(Effect.gen(function*() {
        const plain = yield* NodeSsl.tcpConnect("127.0.0.1", port)
        yield* plain.output.write(noise(2048, 99))
        return yield* Effect.either(plain.input.readAll)
      }))
      // whatever came back (an alert, or nothing), the server ended it
      expect(garbage._tag === "Left" ? SslError.isSslError(garbage.left) : true).toBe(true)

      // 2. a certificate from an unknown CA: refused
      const untrusted = yield* clientContext()
      yield* SslContext.loadCertificateChain(untrusted, fixture("untrusted-client.pem"))
      yield* SslContext.loadPrivateKey(untrusted, fixture("untrusted-client.key"))
      const refused = yield* Effect.scoped(Effect.flip(Effect.flatMap(
        Ssl.connect("localhost", port, untrusted),
        (conn) => Effect.zipRight(conn.output.write("let me in\n"), conn.input.read())
      )))
      expect(SslError.isSslError(refused)).toBe(true)

      // 3. a good client is still served
      const good = yield* clientContext()
      yield* SslContext.loadCertificateChain(good, fixture("client-chain.pem"))
      yield* SslContext.loadPrivateKey(good, fixture("client.key"))
      const conn = yield* Ssl.connect("localhost", port, good)
      yield* conn.output.write("hello\n")
      expect(yield* conn.input.readLine).toEqual(Option.some("hello"))
      yield* conn.output.close
      expect(yield* conn.input.read()).toEqual(Option.none())
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("Ssl.accept: a failed handshake fails that accept only; the next one succeeds", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() })
      const first = yield* Effect.fork(Effect.scoped(Effect.flip(Ssl.accept(listener))))
      const plain = yield* Effect.scoped(Effect.gen(function*() {
        const tcp = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
        yield* tcp.output.write("HELO not-tls\r\n")
        return yield* Effect.either(tcp.input.readAll)
      }))
      expect(plain._tag === "Left" ? SslError.isSslError(plain.left) : true).toBe(true)
      expect(yield* Fiber.join(first)).toMatchObject({ _tag: "HandshakeError", reason: "NotTls", side: "server" })
      const second = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => conn.session)))
      yield* Effect.scoped(Ssl.connect("localhost", listener.address.port, yield* clientContext()))
      expect((yield* Fiber.join(second)).protocol).toBe("TLSv1.3")
    }).pipe(Effect.provide(TestLayer)))
})
