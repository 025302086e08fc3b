/**
 * STARTTLS: plaintext over real TCP (NodeSsl.tcpListen, tcpAccept, tcpConnect), then Ssl.wrap on
 * the same connection. A ClientHello that follows the command at once (even in the same TCP
 * segment) is not lost, closeOriginal says whether the plain ports outlive TLS, plain TCP ports
 * half-close, and openssl s_client -starttls smtp talks to it.
 */
import { Ssl } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Stream from "node:stream"
import * as Tls from "node:tls"
import { drain } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { spawnOpenssl } from "../../core/test/helpers/Openssl.js"
import { leakCheck, suspended } from "../../core/test/helpers/Resources.js"

const clientOptions = Effect.map(clientContext(), (context) => ({
  mode: "connect" as const,
  hostname: "localhost",
  context
}))
const serverOptions = Effect.map(serverContext(), (context) => ({ mode: "accept" as const, context }))

const leaks = leakCheck()

describe("STARTTLS over TCP (tcpListen, tcpAccept, tcpConnect)", () => {
  /** A STARTTLS server: a plaintext greeting and command, then TLS on the same connection. */
  const startTlsServer = (listener: NodeSsl.TcpListener, greet: boolean) =>
    Effect.fork(Effect.scoped(Effect.gen(function*() {
      const plain = yield* NodeSsl.tcpAccept(listener)
      if (greet) yield* plain.output.write("220 ready\r\n")
      const command = yield* plain.input.readLine
      if (greet) yield* plain.output.write("220 go ahead\r\n")
      const conn = yield* Ssl.wrap(plain, yield* serverOptions)
      const line = yield* conn.input.readLine
      yield* conn.output.write(`secure ${Option.getOrElse(line, () => "?")}\n`)
      yield* conn.output.close
      return { command, rest: yield* drain(conn.input), session: yield* conn.session }
    })))

  it.scopedLive("plaintext first, then both sides wrap the same connection", () =>
    Effect.gen(function*() {
      const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      const server = yield* startTlsServer(listener, true)
      const plain = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
      expect(yield* plain.input.readLine).toEqual(Option.some("220 ready"))
      yield* plain.output.write("STARTTLS\r\n")
      expect(yield* plain.input.readLine).toEqual(Option.some("220 go ahead"))
      const conn = yield* Ssl.wrap(plain, yield* clientOptions)
      yield* conn.output.write("ping\n")
      expect(yield* conn.input.readLine).toEqual(Option.some("secure ping"))
      yield* conn.output.close
      const served = yield* Fiber.join(server)
      expect(served.command).toEqual(Option.some("STARTTLS"))
      expect(served.rest).toEqual({ data: "", end: "eof" })
      // The wrap ran over the socket itself: the session knows the real TCP addresses.
      const session = yield* conn.session
      expect(session.verified).toBe(true)
      expect(session.remoteAddress).toEqual({ hostname: "127.0.0.1", port: listener.address.port })
      expect(served.session.localAddress).toEqual({ hostname: "127.0.0.1", port: listener.address.port })
      expect(served.session.remoteAddress.port).toBe(session.localAddress.port)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("closeOriginal: false leaves the TCP connection open: plaintext flows both ways after TLS", () =>
    Effect.gen(function*() {
      const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const plain = yield* NodeSsl.tcpAccept(listener)
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* Ssl.wrap(plain, yield* serverOptions)
          yield* conn.output.write(`secure ${Option.getOrElse(yield* conn.input.readLine, () => "?")}\n`)
          yield* conn.output.close
          yield* drain(conn.input)
        }))
        // Both close_notifys have been exchanged: the same socket speaks plaintext again. (The
        // side that saw the other's close_notify last speaks first: bytes that arrive before a
        // side has read its peer's close_notify go to TLS, as they would with any TLS stack.)
        yield* plain.output.write("plain hello\n")
        const reply = yield* plain.input.readLine
        yield* plain.output.close
        return reply
      })))
      const plain = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(plain, yield* clientOptions)
        yield* conn.output.write("ping\n")
        expect(yield* conn.input.readLine).toEqual(Option.some("secure ping"))
        yield* conn.output.close
        expect(yield* conn.input.read()).toEqual(Option.none())
      }))
      expect(yield* plain.input.readLine).toEqual(Option.some("plain hello"))
      yield* plain.output.write("hello again\n")
      expect(yield* Fiber.join(server)).toEqual(Option.some("hello again"))
      expect(yield* plain.input.read()).toEqual(Option.none())
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a ClientHello sent right after the command is not lost (5 rounds)", () =>
    Effect.gen(function*() {
      const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      for (let round = 0; round < 5; round++) {
        const server = yield* startTlsServer(listener, false)
        yield* Effect.scoped(Effect.gen(function*() {
          const plain = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
          yield* plain.output.write("STARTTLS\r\n")
          // No reply awaited: TLS starts at once.
          const conn = yield* Ssl.wrap(plain, yield* clientOptions)
          yield* conn.output.write(`round ${round}\n`)
          expect(yield* conn.input.readLine).toEqual(Option.some(`secure round ${round}`))
        }))
        const served = yield* Fiber.join(server)
        expect(served.command).toEqual(Option.some("STARTTLS"))
        expect(served.rest).toEqual({ data: "", end: "eof" })
      }
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a ClientHello in the same TCP segment as the command is not lost", () =>
    Effect.gen(function*() {
      const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      const server = yield* startTlsServer(listener, false)
      const ca = Fs.readFileSync(fixture("root-ca.pem"))
      // A node:tls client whose first write (the ClientHello) goes out glued to "STARTTLS\r\n".
      const reply = yield* Effect.async<string, Error>((resume) => {
        const tcp = Net.connect({ host: "127.0.0.1", port: listener.address.port })
        let first = true
        const glue = new Stream.Duplex({
          read() {
            tcp.resume()
          },
          write(chunk: Buffer, _encoding, callback) {
            const data = first ? Buffer.concat([Buffer.from("STARTTLS\r\n"), chunk]) : chunk
            first = false
            tcp.write(data, callback)
          },
          final(callback) {
            tcp.end(callback)
          }
        })
        tcp.on("data", (chunk) => {
          if (!glue.push(chunk)) tcp.pause()
        })
        tcp.on("end", () => glue.push(null))
        tcp.on("error", (error) => glue.destroy(error))
        tcp.once("connect", () => {
          const tls = Tls.connect({ socket: glue, servername: "localhost", ca })
          let text = ""
          tls.on("error", (error) => resume(Effect.fail(error)))
          tls.on("secureConnect", () => tls.write("glued\n"))
          tls.on("data", (chunk: Buffer) => {
            text += chunk.toString()
          })
          tls.on("end", () => {
            tls.end()
            tcp.destroy()
            resume(Effect.succeed(text))
          })
        })
      })
      expect(reply).toBe("secure glued\n")
      const served = yield* Fiber.join(server)
      expect(served.command).toEqual(Option.some("STARTTLS"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("closeOriginal: true closes the plain ports with the TLS connection; wrapping them again fails at once", () =>
    Effect.gen(function*() {
      const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      const server = yield* startTlsServer(listener, false)
      const plain = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
      yield* plain.output.write("STARTTLS\r\n")
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(plain, { ...(yield* clientOptions), closeOriginal: true })
        yield* conn.output.write("once\n")
        expect(yield* conn.input.readLine).toEqual(Option.some("secure once"))
      }))
      yield* Fiber.join(server)
      expect(yield* Effect.flip(plain.output.write("lost?"))).toMatchObject({ _tag: "IoError", reason: "Closed" })
      expect(yield* Effect.flip(plain.input.read())).toMatchObject({ _tag: "IoError", reason: "Closed" })
      const again = yield* Effect.flip(Effect.scoped(Ssl.wrap(plain, yield* clientOptions)))
      expect(again._tag).toBe("HandshakeError")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a wrap whose scope ends mid-handshake fails at once, and the plain ports are the caller's again", () =>
    Effect.gen(function*() {
      // A server that reads the ClientHello and never answers it.
      const seen: Array<string> = []
      const hello = yield* Deferred.make<void>()
      const more = yield* Deferred.make<void>()
      const server = Net.createServer((socket) => {
        socket.on("data", (data) => {
          seen.push(data.toString("latin1"))
          Deferred.unsafeDone(seen.length === 1 ? hello : more, Exit.void)
        })
      })
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.sync(() => server.close())
      )
      const plain = yield* NodeSsl.tcpConnect("127.0.0.1", (server.address() as Net.AddressInfo).port)
      const scope = yield* Scope.make()
      const wrapping = yield* Effect.fork(
        Scope.extend(Ssl.wrap(plain, yield* clientOptions), scope).pipe(Ssl.withHandshakeTimeout("20 seconds"))
      )
      yield* Deferred.await(hello)
      yield* Scope.close(scope, Exit.void)
      // not the handshake timeout's
      const error = yield* Effect.flip(Fiber.join(wrapping))
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "PeerClosed" })
      yield* plain.output.write("QUIT\r\n")
      yield* Deferred.await(more)
      expect(seen.at(-1)).toBe("QUIT\r\n")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("plain TCP ports half-close: output.close leaves the input readable", () =>
    Effect.gen(function*() {
      const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const plain = yield* NodeSsl.tcpAccept(listener)
        const request = yield* drain(plain.input)
        yield* plain.output.write(`got ${request.data}`)
        yield* plain.output.close
      })))
      const plain = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
      yield* plain.output.write("question")
      yield* plain.output.close
      expect(yield* drain(plain.input)).toEqual({ data: "got question", end: "eof" })
      yield* Fiber.join(server)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a tcpAccept interrupted while waiting returns; the listener's scope ends it and refuses connects", () =>
    Effect.gen(function*() {
      const port = yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
        const waiting = yield* Effect.fork(Effect.scoped(NodeSsl.tcpAccept(listener)))
        yield* suspended(waiting)
        yield* Fiber.interrupt(waiting)
        return listener.address.port
      }))
      const error = yield* Effect.flip(Effect.scoped(NodeSsl.tcpConnect("127.0.0.1", port)))
      expect(error).toMatchObject({ _tag: "ConnectError", reason: "Refused" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("openssl s_client -starttls smtp against tcpListen + wrap", () =>
    Effect.gen(function*() {
      const context = yield* serverContext()
      const tcp = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const plain = yield* NodeSsl.tcpAccept(tcp)
        const transcript: Array<string> = []
        const line = Effect.map(plain.input.readLine, (l) => {
          const text = Option.getOrElse(l, () => "<eof>")
          transcript.push(text)
          return text
        })
        yield* plain.output.write("220 localhost ESMTP effect-ssl\r\n")
        const ehlo = yield* line
        if (!/^EHLO /i.test(ehlo)) return yield* Effect.dieMessage(`expected EHLO, got ${ehlo}`)
        yield* plain.output.write("250-localhost greets you\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        const starttls = yield* line
        if (starttls.toUpperCase() !== "STARTTLS") return yield* Effect.dieMessage(`expected STARTTLS, got ${starttls}`)
        yield* plain.output.write("220 2.0.0 Ready to start TLS\r\n")
        const conn = yield* Ssl.wrap(plain, { mode: "accept", context })
        const secured = yield* conn.input.readLine
        yield* conn.output.write("250 2.0.0 OK over TLS\r\n")
        return { transcript, secured, session: yield* conn.session }
      })))
      const client = yield* spawnOpenssl([
        "s_client",
        "-starttls",
        "smtp",
        "-connect",
        `127.0.0.1:${tcp.address.port}`,
        "-CAfile",
        "root-ca.pem",
        "-verify_return_error",
        "-servername",
        "localhost",
        "-nocommands"
      ])
      yield* client.waitFor(/Verify return code: 0 \(ok\)/)
      yield* client.write("NOOP\n")
      const { secured, session, transcript } = yield* Fiber.join(server)
      expect(transcript[0]).toMatch(/^EHLO /)
      expect(transcript[1]).toBe("STARTTLS")
      expect(secured).toEqual(Option.some("NOOP"))
      expect(session.protocol).toBe("TLSv1.3")
      expect(session.servername).toEqual(Option.some("localhost"))
      yield* client.waitFor(/250 2\.0\.0 OK over TLS/)
      yield* client.endInput
      yield* client.exited
    }).pipe(Effect.provide(TestLayer)))
})

describe("leaks", () => {
  it.live("every socket and file descriptor of this file is released", () => leaks.released)
})
