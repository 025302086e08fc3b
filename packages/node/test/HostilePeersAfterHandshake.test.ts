/**
 * Peers that break the connection after the handshake: a record that does not authenticate, and a
 * client that asks to renegotiate. Both end the connection at once with a typed IoError on the
 * pending read, on the native handle and over the JS-stream transport (truncation detection)
 * alike; a renegotiation is refused before any of its handshake is done, so a client cannot make
 * the server spend its CPU on handshake after handshake. And peers that vanish mid-stream (a TCP
 * reset, a killed openssl s_server): IoErrors on both ports, never a clean end of input.
 */
import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { spawnOpenssl, sServer } from "../../core/test/helpers/Openssl.js"
import { closeOf, tcpServer } from "../../core/test/helpers/RawPeers.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

const ca = Fs.readFileSync(fixture("root-ca.pem"))

/**
 * The old code left these reads pending for ten minutes: a bound well above a loopback round trip
 * turns that into a failure with a message instead of the runner's timeout.
 */
const atOnce = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, {
    duration: "10 seconds",
    onTimeout: () => new Error(`${what}: still pending after 10 s`)
  })

const transports = [
  { name: "native handle", detectTruncation: false },
  { name: "JS-stream transport (setDetectTruncation)", detectTruncation: true }
] as const

/**
 * A listener on 127.0.0.1 with the fixture chain whose key log counts the handshakes it has done:
 * every full handshake logs its client random once (TLS 1.2: CLIENT_RANDOM; TLS 1.3:
 * CLIENT_HANDSHAKE_TRAFFIC_SECRET), whatever else it logs.
 */
const countingListener = (detectTruncation: boolean) =>
  Effect.gen(function*() {
    const context = yield* serverContext()
    if (detectTruncation) yield* SslContext.setDetectTruncation(context, true)
    const randoms = new Set<string>()
    yield* SslContext.setKeyLog(context, (line) => {
      const match = /^(?:CLIENT_RANDOM|CLIENT_HANDSHAKE_TRAFFIC_SECRET) ([0-9a-fA-F]+)/.exec(line)
      if (match !== null) randoms.add(match[1]!)
    })
    const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context })
    return { listener, handshakes: () => randoms.size }
  })

/** How the server's next read after "before\n" ended: the error's tag, reason and code. */
const readAfterFirstLine = (listener: Ssl.Listener, ready: Deferred.Deferred<void>) =>
  Effect.fork(Effect.scoped(Effect.gen(function*() {
    const conn = yield* Ssl.accept(listener)
    expect(yield* conn.input.readLine).toEqual(Option.some("before"))
    yield* Deferred.succeed(ready, undefined)
    return yield* Effect.either(conn.input.read())
  })))

const expectProtocolError = (result: Either.Either<Option.Option<Uint8Array>, SslError.SslError>, code: RegExp) => {
  if (Either.isRight(result)) throw new Error(`expected the read to fail, it returned ${JSON.stringify(result.right)}`)
  expect(result.left).toBeInstanceOf(SslError.IoError)
  expect(result.left).toMatchObject({ _tag: "IoError", operation: "read", reason: "Protocol" })
  expect((result.left as SslError.IoError).code).toMatch(code)
}

/** A raw node:tls client (TLS 1.2 only) of the listener, in the scope; resolves once it is connected. */
const rawTls12Client = (port: number) =>
  Effect.acquireRelease(
    Effect.async<Tls.TLSSocket, Error>((resume) => {
      const socket = Tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca, maxVersion: "TLSv1.2" })
      const onError = (error: Error) => resume(Effect.fail(error))
      socket.once("error", onError)
      socket.once("secureConnect", () => {
        socket.off("error", onError)
        resume(Effect.succeed(socket))
      })
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

describe("a client that renegotiates (TLS 1.2) is refused", () => {
  for (const transport of transports) {
    it.scopedLive(`${transport.name}: node:tls renegotiate() fails; the server's pending read gets IoError Protocol; one handshake done`, () =>
      Effect.gen(function*() {
        const { handshakes, listener } = yield* countingListener(transport.detectTruncation)
        const ready = yield* Deferred.make<void>()
        const server = yield* readAfterFirstLine(listener, ready)
        const socket = yield* rawTls12Client(listener.address.port)
        expect(socket.getProtocol()).toBe("TLSv1.2")
        socket.write("before\n")
        yield* Deferred.await(ready)
        expect(handshakes()).toBe(1)

        // node:tls calls back only once the new handshake is done.
        const renegotiated: Array<Error | null> = []
        const errors: Array<string | undefined> = []
        socket.on("error", (error) => errors.push((error as { code?: string }).code))
        expect(socket.renegotiate({ rejectUnauthorized: false }, (error) => renegotiated.push(error))).toBe(true)

        expectProtocolError(yield* atOnce("the server's read", Fiber.join(server)), /^ERR_TLS_RENEGOTIATION_DISABLED$/)
        // The server ended the connection: the client sees it close, its renegotiation undone.
        yield* atOnce("the client's close", closeOf(socket))
        expect(renegotiated).toEqual([])
        expect(handshakes()).toBe(1)
      }).pipe(Effect.provide(TestLayer)))
  }

  it.scopedLive("openssl s_client -tls1_2, then \"R\": the server's pending read gets IoError Protocol; s_client is cut off", () =>
    Effect.gen(function*() {
      const { handshakes, listener } = yield* countingListener(false)
      const ready = yield* Deferred.make<void>()
      const server = yield* readAfterFirstLine(listener, ready)
      const client = yield* spawnOpenssl([
        "s_client",
        "-tls1_2",
        "-connect",
        `127.0.0.1:${listener.address.port}`,
        "-servername",
        "localhost",
        "-CAfile",
        "root-ca.pem",
        "-verify_return_error"
      ])
      yield* client.waitFor(/Verify return code: 0 \(ok\)/)
      yield* client.write("before\n")
      yield* Deferred.await(ready)
      // A line "R" asks s_client to renegotiate (it is not sent as data).
      yield* client.write("R\n")
      yield* client.waitFor(/RENEGOTIATING/)
      expectProtocolError(yield* atOnce("the server's read", Fiber.join(server)), /^ERR_TLS_RENEGOTIATION_DISABLED$/)
      // s_client finds its connection gone and exits, with only its first handshake done.
      yield* atOnce("s_client's exit", client.exited)
      expect(handshakes()).toBe(1)
    }).pipe(Effect.provide(TestLayer)))
})

/**
 * A node:tls server on 127.0.0.1 (TLS 1.2, the fixture chain) that answers a connection's first
 * line by renegotiating, then writes "after"; `renegotiated` has the outcome node:tls reported.
 */
const renegotiatingServer = Effect.acquireRelease(
  Effect.async<{ readonly server: Tls.Server; readonly renegotiated: Array<string> }>((resume) => {
    const renegotiated: Array<string> = []
    const server = Tls.createServer({
      cert: Fs.readFileSync(fixture("server-chain.pem")),
      key: Fs.readFileSync(fixture("server.key")),
      maxVersion: "TLSv1.2"
    }, (socket) => {
      socket.on("error", () => {})
      socket.once("data", () => {
        socket.renegotiate({ rejectUnauthorized: false }, (error) => {
          renegotiated.push(error === null ? "done" : error.message)
          socket.write("after\n")
        })
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, renegotiated })))
  }),
  ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

// node:tls clients take part in a server's renegotiation (TLS 1.2), as OpenSSL's and Racket's do
// (Go's refuse it; `disableRenegotiation()` does nothing on a client socket). node:tls emits
// 'secureConnect' again afterwards and checks the chain again, not the host name when the
// renegotiation resumed the session; effect-ssl verifies the server at the handshake only (README).
describe("a server that renegotiates (TLS 1.2)", () => {
  for (const transport of transports) {
    it.scopedLive(`${transport.name}: the client goes along with it and the connection goes on`, () =>
      Effect.gen(function*() {
        const { renegotiated, server } = yield* renegotiatingServer
        const client = yield* clientContext()
        if (transport.detectTruncation) yield* SslContext.setDetectTruncation(client, true)
        const conn = yield* Ssl.connect("localhost", (server.address() as Net.AddressInfo).port, client)
        expect((yield* conn.session).protocol).toBe("TLSv1.2")
        yield* conn.output.write(new TextEncoder().encode("before\n"))
        expect(yield* atOnce("the line after the renegotiation", conn.input.readLine)).toEqual(Option.some("after"))
        expect(renegotiated).toEqual(["done"])
        yield* conn.output.write(new TextEncoder().encode("still here\n"))
        expect((yield* conn.session).verified).toBe(true)
      }).pipe(Effect.provide(TestLayer)))
  }
})

// ---------------------------------------------------------------------------------------------
// A record that does not authenticate

/**
 * A TCP proxy in front of 127.0.0.1:target that forwards whole TLS records and flips the lowest
 * bit of the last byte (inside the AEAD tag) of the `nth` application-data record (content type
 * 23) going `direction`; what goes the other way passes as it comes. `flipped` completes once the
 * damaged record has been forwarded.
 */
const bitFlipProxy = (
  target: number,
  direction: "toServer" | "toClient",
  nth: number
): Effect.Effect<{ readonly port: number; readonly flipped: Effect.Effect<void> }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const flipped = yield* Deferred.make<void>()
    const relay = (from: Net.Socket, to: Net.Socket, flip: boolean) => {
      let pending = Buffer.alloc(0)
      let seen = 0
      from.on("data", (chunk: Buffer) => {
        if (!flip) return void to.write(chunk)
        pending = Buffer.concat([pending, chunk])
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
          const record = Buffer.from(pending.subarray(0, 5 + pending.readUInt16BE(3)))
          pending = pending.subarray(record.length)
          const damaged = record[0] === 23 && ++seen === nth
          if (damaged) record[record.length - 1]! ^= 0x01
          to.write(record)
          if (damaged) Deferred.unsafeDone(flipped, Effect.void)
        }
      })
      from.on("end", () => to.end())
    }
    const { port } = yield* tcpServer((client) => {
      const server = Net.connect({ host: "127.0.0.1", port: target })
      server.on("error", () => client.destroy())
      server.on("close", () => client.destroy())
      client.on("close", () => server.destroy())
      relay(client, server, direction === "toServer")
      relay(server, client, direction === "toClient")
    })
    return { port, flipped: Deferred.await(flipped) }
  })

describe("a record with one flipped bit", () => {
  // TLS 1.3 encrypts the client's Finished too: its first application-data record is that one.
  const protocols = [
    { version: "TLSv1.2", nth: 1 },
    { version: "TLSv1.3", nth: 2 }
  ] as const
  for (const transport of transports) {
    for (const { nth, version } of protocols) {
      it.scopedLive(`${transport.name}, ${version}: the server's pending read fails at once with IoError Protocol`, () =>
        Effect.gen(function*() {
          const { listener } = yield* countingListener(transport.detectTruncation)
          const proxy = yield* bitFlipProxy(listener.address.port, "toServer", nth)
          const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
            const conn = yield* Ssl.accept(listener)
            return yield* Effect.either(conn.input.read())
          })))
          const client = yield* Effect.acquireRelease(
            Effect.sync(() => {
              const socket = Tls.connect({
                host: "127.0.0.1",
                port: proxy.port,
                servername: "localhost",
                ca,
                minVersion: version,
                maxVersion: version
              })
              socket.on("error", () => {})
              socket.once("secureConnect", () => socket.write("this record is damaged on the way"))
              return socket
            }),
            (socket) => Effect.sync(() => socket.destroy())
          )
          yield* atOnce("the damaged record", proxy.flipped)
          const result = yield* atOnce("the server's read", Fiber.join(server))
          expectProtocolError(result, /^ERR_SSL_/)
          expect(client.getProtocol()).toBe(version)
        }).pipe(Effect.provide(TestLayer)))
    }
  }

  it.scopedLive("from the server (TLS 1.2): the client's pending read fails at once with IoError Protocol", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() })
      yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.accept(listener)
        yield* conn.output.write("this record is damaged on the way")
        yield* conn.input.read()
      })))
      const proxy = yield* bitFlipProxy(listener.address.port, "toClient", 1)
      const client = yield* clientContext("tls1.2")
      const conn = yield* Ssl.connect("localhost", proxy.port, client)
      const result = yield* atOnce("the client's read", Effect.either(conn.input.read()))
      expectProtocolError(result, /^ERR_SSL_/)
    }).pipe(Effect.provide(TestLayer)))
})

// ---------------------------------------------------------------------------------------------
// Peers that vanish

/**
 * A TCP relay from a local port to `target`; `reset` aborts the client-facing side with a TCP RST
 * (the way a crashed host or a middlebox ends a connection).
 */
const resettingRelay = (target: number) =>
  Effect.gen(function*() {
    const downstream = yield* Deferred.make<Net.Socket>()
    const { port } = yield* tcpServer((client) => {
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
