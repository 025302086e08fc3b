/**
 * ALPN, over real handshakes: the server chooses by its own preference, against openssl s_client
 * and s_server too; with nothing in common it goes on without ALPN (Racket's allow-no-match) or,
 * with `allowNoMatch: false`, refuses. To go on, the server reads the client's offer out of its
 * ClientHello before OpenSSL does: `parseClientHelloAlpn`, checked on real ClientHellos (node:tls
 * and openssl s_client), however the bytes are split and however the message is spread over
 * records.
 */
import { Port, Ssl, SslContext } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { acceptOne, serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { spawnOpenssl, sServer } from "../../core/test/helpers/Openssl.js"
import { parseClientHelloAlpn } from "../src/internal/workarounds/clientHello.js"

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
          const socket = Tls.connect({
            host: "127.0.0.1",
            port,
            servername: "localhost",
            rejectUnauthorized: false,
            ALPNProtocols: [offer]
          })
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
      const error = yield* Effect.flip(
        SslContext.setAlpn(server, ["h2"], { allowNoMatch: "yes" as unknown as boolean })
      )
      expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "allowNoMatch" })
    }))
})

// ---------------------------------------------------------------------------------------------
// The offer read out of ClientHellos

/** Listens on 127.0.0.1, and resolves with the first bytes a client sends once they hold a whole ClientHello. */
const captureHello = (
  startClient: (port: number) => Effect.Effect<unknown, unknown, Scope.Scope>
): Effect.Effect<Buffer, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(
      Effect.async<Net.Server>((resume) => {
        const server = Net.createServer()
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) => Effect.sync(() => server.close())
    )
    const captured = Effect.async<Buffer>((resume) => {
      server.once("connection", (socket) => {
        let seen = Buffer.alloc(0)
        socket.on("data", (chunk: Buffer) => {
          seen = Buffer.concat([seen, chunk])
          if (parseClientHelloAlpn(seen)._tag !== "NeedMore") {
            socket.destroy()
            resume(Effect.succeed(seen))
          }
        })
      })
    })
    yield* startClient((server.address() as Net.AddressInfo).port)
    return yield* captured
  })

const nodeClient = (alpn: ReadonlyArray<string> | undefined) => (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const socket = Tls.connect({
        port,
        host: "127.0.0.1",
        servername: "localhost",
        ...(alpn ? { ALPNProtocols: [...alpn] } : {})
      })
      socket.on("error", () => {})
      return socket
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

const opensslClient = (args: ReadonlyArray<string>) => (port: number) =>
  spawnOpenssl(["s_client", "-connect", `127.0.0.1:${port}`, ...args])

/** The ClientHello's handshake message spread over records of at most `size` bytes each. */
const reframe = (hello: Buffer, size: number): Buffer => {
  const recordLength = hello.readUInt16BE(3)
  const message = hello.subarray(5, 5 + recordLength)
  const records: Array<Buffer> = []
  for (let at = 0; at < message.length; at += size) {
    const fragment = message.subarray(at, at + size)
    const header = Buffer.from([22, 3, 1, 0, 0])
    header.writeUInt16BE(fragment.length, 3)
    records.push(header, fragment)
  }
  return Buffer.concat(records)
}

const cases = [
  { name: "node:tls offering h2 and http/1.1", start: nodeClient(["h2", "http/1.1"]), offered: ["h2", "http/1.1"] },
  { name: "node:tls offering nothing", start: nodeClient(undefined), offered: undefined },
  {
    name: "openssl s_client -alpn",
    start: opensslClient(["-alpn", "spdy/3,imap,h2"]),
    offered: ["spdy/3", "imap", "h2"]
  },
  { name: "openssl s_client -tls1_2 -alpn", start: opensslClient(["-tls1_2", "-alpn", "x"]), offered: ["x"] }
]

describe("parseClientHelloAlpn", () => {
  for (const { name, offered, start } of cases) {
    it.scopedLive(`${name}: needs more until the last byte, whichever way it is framed`, () =>
      Effect.gen(function*() {
        const hello = yield* captureHello(start)
        expect(parseClientHelloAlpn(hello)).toEqual({ _tag: "Offered", protocols: offered })
        for (let cut = 0; cut < hello.length; cut++) {
          const partial = parseClientHelloAlpn(hello.subarray(0, cut))
          // Incomplete, and asking for more than it has (so a reader waits for bytes, not events).
          expect(partial).toMatchObject({ _tag: "NeedMore" })
          if (partial._tag === "NeedMore") expect(partial.atLeast).toBeGreaterThan(cut)
        }
        // The same message in a few records (as a peer may fragment it), cut anywhere.
        const messageLength = hello.readUInt16BE(3)
        for (const records of [2, 3, 8]) {
          const framed = reframe(hello, Math.ceil(messageLength / records))
          expect(parseClientHelloAlpn(framed)).toEqual({ _tag: "Offered", protocols: offered })
          expect(parseClientHelloAlpn(framed.subarray(0, framed.length - 1))._tag).toBe("NeedMore")
        }
        // In more records than that (one byte each, say), it is left to OpenSSL: each record more
        // would cost a parse of all the bytes so far.
        for (const size of [1, Math.floor(messageLength / 9)]) {
          expect(parseClientHelloAlpn(reframe(hello, size))._tag).toBe("Unreadable")
        }
        // Bytes after the ClientHello (a pipelined record) change nothing.
        expect(parseClientHelloAlpn(Buffer.concat([hello, Buffer.from([23, 3, 3, 0, 1, 0])]))).toEqual({
          _tag: "Offered",
          protocols: offered
        })
      }))
  }

  it("anything that is not a TLS handshake is left to OpenSSL", () => {
    expect(parseClientHelloAlpn(Buffer.from("GET / HTTP/1.1\r\n\r\n"))._tag).toBe("Unreadable")
    expect(parseClientHelloAlpn(Buffer.from([23, 3, 3, 0, 5, 1, 2, 3, 4, 5]))._tag).toBe("Unreadable")
    // A handshake record holding a ServerHello, and an empty record.
    expect(parseClientHelloAlpn(Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]))._tag).toBe("Unreadable")
    expect(parseClientHelloAlpn(Buffer.from([22, 3, 1, 0, 0]))._tag).toBe("Unreadable")
    // A ClientHello whose lengths run past its end.
    const broken = Buffer.from([22, 3, 1, 0, 40, 1, 0, 0, 36, 3, 3, ...new Array(32).fill(0), 200, 0])
    expect(parseClientHelloAlpn(broken)._tag).toBe("Unreadable")
    // A record longer than TLS allows, and a message longer than any real ClientHello.
    expect(parseClientHelloAlpn(Buffer.from([22, 3, 1, 0x40, 1, 1, 0, 0, 1]))._tag).toBe("Unreadable")
    expect(parseClientHelloAlpn(Buffer.from([22, 3, 1, 0, 4, 1, 0x10, 0, 0]))._tag).toBe("Unreadable")
  })

  it("a ClientHello without extensions offers no ALPN", () => {
    const body = Buffer.from([3, 3, ...new Array(32).fill(7), 0, 0, 2, 0, 0x2f, 1, 0])
    const message = Buffer.concat([Buffer.from([1, 0, 0, body.length]), body])
    const record = Buffer.concat([Buffer.from([22, 3, 1, 0, message.length]), message])
    expect(parseClientHelloAlpn(record)).toEqual({ _tag: "Offered", protocols: undefined })
  })
})
