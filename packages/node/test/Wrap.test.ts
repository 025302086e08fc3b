/**
 * Ssl.wrap: TLS over any Port.Duplex (in-memory pipes of tiny capacity), what closeOriginal and
 * shutdownOnClose do to the wrapped duplex, argument errors, and a bare end of the transport.
 * STARTTLS over real TCP: WrapStartTls.test.ts.
 */
import { Port, Ssl, SslContext } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import { drain } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { eventually, leakCheck } from "../../core/test/helpers/Resources.js"

const decoder = new TextDecoder()

/** A duplex that passes everything to `duplex` and records what was done to it. */
const spy = (duplex: Port.Duplex) => {
  const seen = { written: 0, outputClosed: false, inputClosed: false }
  const spied: Port.Duplex = {
    input: {
      ...duplex.input,
      close: Effect.zipRight(Effect.sync(() => void (seen.inputClosed = true)), duplex.input.close)
    },
    output: Port.makeOutput({
      write: (bytes) =>
        Effect.zipRight(Effect.sync(() => void (seen.written += bytes.length)), duplex.output.write(bytes)),
      flush: duplex.output.flush,
      close: Effect.zipRight(Effect.sync(() => void (seen.outputClosed = true)), duplex.output.close)
    })
  }
  return { seen, duplex: spied }
}

const clientOptions = Effect.map(clientContext(), (context) => ({
  mode: "connect" as const,
  hostname: "localhost",
  context
}))
const serverOptions = Effect.map(serverContext(), (context) => ({ mode: "accept" as const, context }))

/** Random bytes of the given size, and their SHA-256. */
const payload = (size: number) => {
  const bytes = new Uint8Array(Crypto.randomBytes(size))
  return { bytes, sha: Crypto.createHash("sha256").update(bytes).digest("hex") }
}
const sha256 = (bytes: Uint8Array) => Crypto.createHash("sha256").update(bytes).digest("hex")

const leaks = leakCheck()

describe("wrap over Port.pipe", () => {
  for (const capacity of [1, 10, 100]) {
    it.scopedLive(`capacity ${capacity}: handshake, then 4 KiB each way at once`, () =>
      Effect.gen(function*() {
        const [a, b] = yield* Port.pipe({ capacity })
        const up = payload(4096)
        const down = payload(4096)
        const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const conn = yield* Ssl.wrap(b, yield* serverOptions)
          const writer = yield* Effect.fork(conn.output.write(down.bytes))
          const received = yield* conn.input.readExactly(up.bytes.length)
          yield* Fiber.join(writer)
          return { received: sha256(received), session: yield* conn.session }
        })))
        const conn = yield* Ssl.wrap(a, yield* clientOptions)
        const writer = yield* Effect.fork(conn.output.write(up.bytes))
        const received = yield* conn.input.readExactly(down.bytes.length)
        yield* Fiber.join(writer)
        expect(sha256(received)).toBe(down.sha)
        const served = yield* Fiber.join(server)
        expect(served.received).toBe(up.sha)
        const session = yield* conn.session
        expect(session.verified).toBe(true)
        expect(session.protocol).toBe("TLSv1.3")
        expect(session.servername).toEqual(Option.some("localhost"))
        expect(served.session.servername).toEqual(Option.some("localhost"))
        expect(served.session.verified).toBe(false)
      }).pipe(Effect.provide(TestLayer)))
  }

  it.scopedLive("closeOriginal: true closes the wrapped duplex once both TLS ports are closed", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const { duplex, seen } = spy(a)
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(b, yield* serverOptions)
        const request = yield* drain(conn.input)
        yield* conn.output.write(`got ${request.data}`)
        yield* conn.output.close
        return request
      })))
      const conn = yield* Ssl.wrap(duplex, { ...(yield* clientOptions), closeOriginal: true })
      yield* conn.output.write("hello")
      yield* conn.output.close
      expect(yield* drain(conn.input)).toEqual({ data: "got hello", end: "eof" })
      expect(yield* Fiber.join(server)).toEqual({ data: "hello", end: "eof" })
      // Only the output is closed so far: the original is still open.
      expect(seen).toMatchObject({ outputClosed: false, inputClosed: false })
      yield* conn.input.close
      yield* eventually("original closed", Effect.sync(() => ({ ...seen })), (s) => s.outputClosed && s.inputClosed)
      // The pipe's other end sees the end of input.
      expect(yield* b.input.read()).toEqual(Option.none())
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("closeOriginal: true closes the wrapped duplex when the connection's scope ends", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const { duplex, seen } = spy(a)
      const server = yield* Effect.fork(Effect.scoped(Effect.flatMap(
        Effect.flatMap(serverOptions, (options) => Ssl.wrap(b, options)),
        (conn) => drain(conn.input)
      )))
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(duplex, { ...(yield* clientOptions), closeOriginal: true })
        yield* conn.output.write("scoped")
      }))
      expect(seen).toMatchObject({ outputClosed: true, inputClosed: true })
      expect(yield* Fiber.join(server)).toEqual({ data: "scoped", end: "eof" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("closeOriginal: false (the default) leaves the duplex open: plaintext flows after TLS ends", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 10 })
      const { duplex, seen } = spy(a)
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(b, yield* serverOptions)
        const request = yield* drain(conn.input)
        yield* conn.output.write("secret reply")
        yield* conn.output.close
        return request
      })))
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(duplex, yield* clientOptions)
        yield* conn.output.write("secret")
        yield* conn.output.close
        expect(yield* drain(conn.input)).toEqual({ data: "secret reply", end: "eof" })
        yield* conn.input.close
      }))
      expect(yield* Fiber.join(server)).toEqual({ data: "secret", end: "eof" })
      expect(seen).toMatchObject({ outputClosed: false, inputClosed: false })
      // Both TLS sessions are over; the pipe carries plaintext both ways.
      const there = yield* Effect.fork(b.input.readExactly(9))
      yield* a.output.write("plain A\r\n")
      expect(decoder.decode(yield* Fiber.join(there))).toBe("plain A\r\n")
      const back = yield* Effect.fork(a.input.readExactly(9))
      yield* b.output.write("plain B\r\n")
      expect(decoder.decode(yield* Fiber.join(back))).toBe("plain B\r\n")
    }).pipe(Effect.provide(TestLayer)))

  // The client writes, closes its output without close_notify (shutdownOnClose: false), and its
  // scope then closes the pipe (closeOriginal): the server's wrap sees the transport end bare.
  const unterminated = (server: Ssl.WrapOptions) =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const { duplex, seen } = spy(a)
      const reader = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.wrap(b, server), (conn) => drain(conn.input))))
      const scope = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(duplex, { ...(yield* clientOptions), shutdownOnClose: false, closeOriginal: true })
        yield* conn.output.write("unterminated")
        yield* conn.output.flush
        const before = seen.written
        yield* conn.output.close
        // Not a byte more reached the transport: no close_notify.
        expect(seen.written).toBe(before)
        expect(yield* Effect.flip(conn.output.write("x"))).toMatchObject({ _tag: "IoError", reason: "Closed" })
        return before
      })))
      const written = yield* Fiber.join(scope)
      expect(seen.written).toBe(written)
      return yield* Fiber.join(reader)
    })

  it.scopedLive("shutdownOnClose: false: output.close sends nothing; the transport's bare end is an end of input by default", () =>
    Effect.gen(function*() {
      expect(yield* unterminated(yield* serverOptions)).toEqual({ data: "unterminated", end: "eof" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("shutdownOnClose: false, and the server detects truncation: the transport's bare end is IoError TruncatedEof", () =>
    Effect.gen(function*() {
      const options = yield* serverOptions
      yield* SslContext.setDetectTruncation(options.context, true)
      expect(yield* unterminated(options)).toEqual({ data: "unterminated", end: "IoError:TruncatedEof" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("shutdownOnClose: true (the default): output.close writes the close_notify", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const { duplex, seen } = spy(a)
      const server = yield* Effect.fork(Effect.scoped(Effect.flatMap(
        Effect.flatMap(serverOptions, (options) => Ssl.wrap(b, options)),
        (conn) => drain(conn.input)
      )))
      const conn = yield* Ssl.wrap(duplex, yield* clientOptions)
      yield* conn.output.write("terminated")
      yield* conn.output.flush
      const before = seen.written
      yield* conn.output.close
      expect(seen.written).toBeGreaterThan(before)
      expect(yield* Fiber.join(server)).toEqual({ data: "terminated", end: "eof" })
    }).pipe(Effect.provide(TestLayer)))
})

describe("wrap over Port.pipe, both ports closed early", () => {
  for (const how of ["abandon", "output.close without close_notify"] as const) {
    it.scopedLive(`${how}, then input.close: what TLS still had to send reaches the peer`, () =>
      Effect.gen(function*() {
        const size = 8 * 1024
        const [a, b] = yield* Port.pipe({ capacity: 65536 })
        const served = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const conn = yield* Ssl.wrap(b, yield* serverOptions)
          return (yield* conn.input.readExactly(size)).length
        })))
        const clientScope = yield* Scope.make()
        const conn = yield* Scope.extend(
          Effect.flatMap(clientOptions, (options) => Ssl.wrap(a, { ...options, shutdownOnClose: how === "abandon" })),
          clientScope
        )
        yield* conn.output.write(new Uint8Array(size))
        yield* how === "abandon" ? conn.abandon : conn.output.close
        yield* conn.input.close
        // The connection's scope is still open: the handshake's last flight and the data go on.
        expect(yield* Fiber.join(served)).toBe(size)
        yield* Scope.close(clientScope, Exit.void)
      }).pipe(Effect.provide(TestLayer)))
  }
})

describe("wrap over Port.pipe, cut short", () => {
  it.scopedLive("a write stuck on a peer that stopped reading stops with the scope: the pipe gets nothing more", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1000 })
      const server = yield* serverContext()
      const client = yield* clientContext()
      // The server reads one chunk and then no more.
      const serving = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(b, { mode: "accept", context: server })
        yield* conn.input.read()
        yield* Effect.never
      })))
      // The client's whole scope, its close included, is cut short.
      const outcome = yield* Effect.exit(
        Effect.scoped(Effect.gen(function*() {
          const conn = yield* Ssl.wrap(a, { mode: "connect", context: client, hostname: "localhost" })
          for (let i = 0; i < 16; i++) yield* conn.output.write(new Uint8Array(1 << 20))
        })).pipe(Effect.timeout("500 millis"))
      )
      expect(Exit.isFailure(outcome)).toBe(true)
      yield* Fiber.interrupt(serving)
      // Plaintext on the pipe after the scope: what comes before it is at most what the pipe held
      // when the scope ended, not the rest of the TLS records queued for it.
      yield* Effect.fork(a.output.write("PLAINTEXT-MARKER\n"))
      const chunks: Array<Uint8Array> = []
      while (true) {
        const next = yield* Effect.exit(b.input.read().pipe(Effect.timeout("500 millis")))
        if (Exit.isSuccess(next) && Option.isSome(next.value)) chunks.push(next.value.value)
        else break
      }
      const all = Buffer.concat(chunks)
      expect(all.indexOf("PLAINTEXT-MARKER")).toBeGreaterThanOrEqual(0)
      expect(all.indexOf("PLAINTEXT-MARKER")).toBeLessThanOrEqual(1000 + 64 * 1024)
      // and nothing of the TLS connection after it
      expect(all.length).toBe(all.indexOf("PLAINTEXT-MARKER") + "PLAINTEXT-MARKER\n".length)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a wrap whose scope ends mid-handshake fails at once, and the pipe is the caller's again", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 65536 })
      const client = yield* clientContext()
      const scope = yield* Scope.make()
      const wrapping = yield* Effect.fork(
        Scope.extend(Ssl.wrap(a, { mode: "connect", context: client, hostname: "localhost" }), scope).pipe(
          Ssl.withHandshakeTimeout("20 seconds")
        )
      )
      // The ClientHello has come; nobody answers it.
      const hello = yield* b.input.read()
      expect(Option.isSome(hello)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      // not the handshake timeout's
      const error = yield* Effect.flip(Fiber.join(wrapping))
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "PeerClosed" })
      yield* a.output.write("plain again\n")
      expect(yield* b.input.readLine).toEqual(Option.some("plain again"))
    }).pipe(Effect.provide(TestLayer)))
})

describe("wrap arguments", () => {
  it.scopedLive("a context of the wrong kind for the mode fails with InvalidArgumentError, before any I/O", () =>
    Effect.gen(function*() {
      const [a] = yield* Port.pipe({ capacity: 100 })
      const { duplex, seen } = spy(a)
      const client = yield* clientContext()
      const server = yield* serverContext()
      const accept = yield* Effect.flip(Ssl.wrap(duplex, { mode: "accept", context: client }))
      expect(accept).toMatchObject({ _tag: "InvalidArgumentError", argument: "context" })
      const connect = yield* Effect.flip(Ssl.wrap(duplex, { mode: "connect", hostname: "localhost", context: server }))
      expect(connect).toMatchObject({ _tag: "InvalidArgumentError", argument: "context" })
      // null is not "no context": it is refused rather than replaced by a default one.
      for (const mode of ["accept", "connect"] as const) {
        const nothing = yield* Effect.flip(
          Ssl.wrap(duplex, { mode, hostname: "localhost", context: null as unknown as SslContext.ServerContext })
        )
        expect(nothing).toMatchObject({ _tag: "InvalidArgumentError", argument: "context" })
      }
      expect(seen).toEqual({ written: 0, outputClosed: false, inputClosed: false })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("connect mode that verifies but has no host name fails with InvalidArgumentError, before any I/O", () =>
    Effect.gen(function*() {
      const [a] = yield* Port.pipe({ capacity: 100 })
      const { duplex, seen } = spy(a)
      const error = yield* Effect.flip(Ssl.wrap(duplex, { mode: "connect", context: yield* clientContext() }))
      expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "hostname" })
      expect(error.message).toMatch(/host name/)
      expect(seen.written).toBe(0)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("connect mode without a host name works when verification is off (unverified session)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(b, yield* serverOptions)
        yield* conn.output.write("anonymous\n")
        return yield* conn.session
      })))
      const context = yield* clientContext()
      yield* SslContext.setVerify(context, false)
      const conn = yield* Ssl.wrap(a, { mode: "connect", context })
      expect(yield* conn.input.readLine).toEqual(Option.some("anonymous"))
      const session = yield* conn.session
      expect(session.verified).toBe(false)
      expect(session.servername).toEqual(Option.none())
      expect(Option.isSome(session.peerCertificate)).toBe(true)
      expect((yield* Fiber.join(server)).servername).toEqual(Option.none())
    }).pipe(Effect.provide(TestLayer)))
})

describe("a bare end of the transport (no close_notify) under wrap", () => {
  /** Two connected duplexes (the client's first), in the current scope. */
  const tcpPorts = Effect.gen(function*() {
    const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
    const accepted = yield* Effect.fork(NodeSsl.tcpAccept(listener))
    const client = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
    return [client, yield* Fiber.join(accepted)] as const
  })
  const transports = [
    { over: "TCP ports (tcpConnect, tcpAccept)", pair: tcpPorts },
    { over: "Port.pipe", pair: Port.pipe({ capacity: 4096 }) }
  ] as const
  // (The server reading over Port.pipe: "shutdownOnClose: false …" above.)
  const cases = transports.flatMap(({ over, pair }) =>
    (["server", "client"] as const).filter((reader) => reader === "client" || over !== "Port.pipe").flatMap((reader) =>
      [false, true].map((detect) => ({ over, pair, reader, detect }))
    )
  )
  for (const { detect, over, pair, reader } of cases) {
    const expected = detect ? "IoError TruncatedEof" : "a clean end of input"
    it.scopedLive(`over ${over}, the ${reader} reading${detect ? " with setDetectTruncation" : ""}: ${expected}`, () =>
      Effect.gen(function*() {
        const [a, b] = yield* pair
        const server = yield* serverContext()
        const client = yield* clientContext()
        if (detect) yield* SslContext.setDetectTruncation(reader === "server" ? server : client, true)
        // The other side writes, abandons its output (no close_notify), and its scope then ends
        // the transport with it (closeOriginal): a bare FIN, or a pipe's bare end.
        const truncate = (conn: Ssl.Connection) => Effect.zipRight(conn.output.write("partial"), conn.abandon)
        const serving = yield* Effect.fork(Effect.scoped(Effect.flatMap(
          Ssl.wrap(b, { mode: "accept", context: server, closeOriginal: reader === "client" }),
          (conn) => reader === "server" ? drain(conn.input) : Effect.as(truncate(conn), undefined)
        )))
        const outcome = yield* Effect.scoped(Effect.flatMap(
          Ssl.wrap(a, { mode: "connect", hostname: "localhost", context: client, closeOriginal: reader === "server" }),
          (conn) => reader === "client" ? drain(conn.input) : Effect.as(truncate(conn), undefined)
        ))
        const served = yield* Fiber.join(serving)
        expect(reader === "server" ? served : outcome).toEqual({
          data: "partial",
          end: detect ? "IoError:TruncatedEof" : "eof"
        })
      }).pipe(Effect.provide(TestLayer)))
  }
})

describe("leaks", () => {
  it.live("every socket and file descriptor of this file is released", () => leaks.released)
})
