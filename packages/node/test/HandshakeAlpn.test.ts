/**
 * The ALPN offer read out of real ClientHellos (node:tls and openssl s_client capture), however
 * the bytes are split and however the message is spread over records.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { parseClientHelloAlpn } from "../src/internal/workarounds/clientHello.js"
import { spawnOpenssl } from "../../core/test/helpers/Openssl.js"

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
      const socket = Tls.connect({ port, host: "127.0.0.1", servername: "localhost", ...(alpn ? { ALPNProtocols: [...alpn] } : {}) })
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
  { name: "openssl s_client -alpn", start: opensslClient(["-alpn", "spdy/3,imap,h2"]), offered: ["spdy/3", "imap", "h2"] },
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
