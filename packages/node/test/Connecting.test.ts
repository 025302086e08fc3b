/**
 * Reaching a peer: a first connection on NodeSsl.layer, the addresses a session reports (IPv4 and
 * IPv6), and connections that cannot be made (nothing listening, no such host). Bad arguments to
 * connect, listen, accept and wrap (ports, backlogs, host names, protocol names, contexts) are
 * each a typed error whose message names the argument, before any I/O. (Pipe capacities, read
 * counts and protocol names for contexts: the core tests; files: IdentityFiles.test.ts.)
 */
import { Port, type Protocol, Ssl, SslContext, SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { freePort, silentServer } from "../../core/test/helpers/RawPeers.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/** Checks an InvalidArgumentError for `argument`, its message naming the argument and the value. */
const expectInvalid = (error: unknown, argument: string, shown: string) => {
  expect(error).toBeInstanceOf(SslError.InvalidArgumentError)
  const invalid = error as SslError.InvalidArgumentError
  expect(invalid.argument).toBe(argument)
  expect(invalid.message).toContain(argument)
  expect(invalid.message).toContain(shown)
}

describe("a first connection", () => {
  it.live("NodeSsl.layer: TLS is available on Node, with no load failure to report", () =>
    Effect.gen(function*() {
      expect(yield* Ssl.available).toBe(true)
      expect(yield* Ssl.loadFailReason).toEqual(Option.none())
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("connect and accept talk both ways", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() })
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.accept(listener)
        const line = yield* conn.input.readLine
        yield* conn.output.write(`echo ${Option.getOrElse(line, () => "?")}\n`)
        yield* conn.output.close
        return yield* conn.session
      })))
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      yield* conn.output.write("hello\n")
      const reply = yield* conn.input.readLine
      expect(reply).toEqual(Option.some("echo hello"))
      const session = yield* conn.session
      expect(session.verified).toBe(true)
      expect(session.protocol).toBe("TLSv1.3")
      const eof = yield* conn.input.read()
      expect(Option.isNone(eof)).toBe(true)
      const serverSession = yield* Fiber.join(server)
      expect(serverSession.verified).toBe(false)
    }).pipe(Effect.provide(TestLayer)))
})

describe("addresses", () => {
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

describe("a connection that cannot be made", () => {
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
})

describe("ports, backlogs and host names", () => {
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

  it.scopedLive("listen and tcpListen: 65536, NaN, Infinity and -0.5 are InvalidArgumentError port", () =>
    Effect.gen(function*() {
      const context = yield* serverContext()
      for (const port of [65536, Number.NaN, Number.POSITIVE_INFINITY, -0.5]) {
        expectInvalid(yield* Effect.flip(Ssl.listen(port, { context })), "port", String(port))
        expectInvalid(yield* Effect.flip(NodeSsl.tcpListen(port)), "port", String(port))
      }
      // and the range is said: 0 (any free port) to 65535 for a listener
      const error = yield* Effect.flip(Ssl.listen(65536, { context }))
      expect(error.message).toContain("0 to 65535")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("connect and tcpConnect: Infinity, and 0 (only a listener may ask for any port)", () =>
    Effect.gen(function*() {
      for (const port of [Number.POSITIVE_INFINITY, 0]) {
        const error = yield* Effect.flip(Ssl.connect("localhost", port, yield* clientContext()))
        expectInvalid(error, "port", String(port))
        expect(error.message).toContain("1 to 65535")
        expectInvalid(yield* Effect.flip(NodeSsl.tcpConnect("localhost", port)), "port", String(port))
      }
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a negative or fractional backlog: InvalidArgumentError backlog", () =>
    Effect.gen(function*() {
      const context = yield* serverContext()
      for (const backlog of [-1, 1.5, Number.NaN]) {
        expectInvalid(yield* Effect.flip(Ssl.listen(0, { context, backlog })), "backlog", String(backlog))
        expectInvalid(yield* Effect.flip(NodeSsl.tcpListen(0, { backlog })), "backlog", String(backlog))
      }
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("an empty host name, or one with spaces or slashes: InvalidArgumentError hostname", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      for (const hostname of ["", "local host", "localhost/path", "a\0b", "x".repeat(254)]) {
        const error = yield* Effect.flip(Ssl.connect(hostname, silent.port, yield* clientContext()))
        expectInvalid(error, "hostname", JSON.stringify(hostname))
        expectInvalid(
          yield* Effect.flip(NodeSsl.tcpConnect(hostname, silent.port)),
          "hostname",
          JSON.stringify(hostname)
        )
        expectInvalid(
          yield* Effect.flip(Ssl.listen(0, { hostname, context: yield* serverContext() })),
          "hostname",
          JSON.stringify(hostname)
        )
      }
      expect(silent.connections()).toBe(0)
    }).pipe(Effect.provide(TestLayer)))
})

describe("protocol names and contexts through connect, listen and wrap", () => {
  const unknown = ["tls1.4", "TLS1.2", "ssl", "", "__proto__"]

  it.scopedLive("an unknown protocol string: InvalidArgumentError protocol, before any I/O", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const [a] = yield* Port.pipe()
      for (const name of unknown) {
        const protocol = name as Protocol.Protocol
        const shown = JSON.stringify(name)
        expectInvalid(yield* Effect.flip(Ssl.connect("localhost", silent.port, protocol)), "protocol", shown)
        expectInvalid(
          yield* Effect.flip(Ssl.listen(0, { hostname: "127.0.0.1", context: protocol })),
          "protocol",
          shown
        )
        expectInvalid(
          yield* Effect.flip(Ssl.wrap(a, { mode: "connect", hostname: "localhost", protocol })),
          "protocol",
          shown
        )
        expectInvalid(yield* Effect.flip(Ssl.wrap(a, { mode: "accept", protocol })), "protocol", shown)
        expectInvalid(yield* Effect.flip(SslContext.makeClient(protocol)), "protocol", shown)
        expectInvalid(yield* Effect.flip(SslContext.makeServer(protocol)), "protocol", shown)
      }
      expect(silent.connections()).toBe(0)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("something that is neither a context nor a protocol name: InvalidArgumentError context", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const [a] = yield* Port.pipe()
      for (const bogus of [{}, 42, true, { kind: "client", state: {} }]) {
        const context = bogus as unknown as SslContext.ClientContext
        expect(yield* Effect.flip(Ssl.connect("localhost", silent.port, context))).toMatchObject({
          _tag: "InvalidArgumentError",
          argument: "context"
        })
        expect(
          yield* Effect.flip(Ssl.listen(0, { context: bogus as unknown as SslContext.ServerContext }))
        ).toMatchObject({ _tag: "InvalidArgumentError", argument: "context" })
        expect(
          yield* Effect.flip(Ssl.wrap(a, { mode: "accept", context: bogus as unknown as SslContext.ServerContext }))
        )
          .toMatchObject({ _tag: "InvalidArgumentError", argument: "context" })
      }
      expect(silent.connections()).toBe(0)
    }).pipe(Effect.provide(TestLayer)))
})
