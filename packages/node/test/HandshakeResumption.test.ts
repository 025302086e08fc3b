/**
 * Client session resumption: a client context keeps the sessions servers offer, per host, port
 * and server name, and offers them on the next connection there (issue 14).
 */
import { Ssl, SslContext } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import type * as Net from "node:net"
import * as Tls from "node:tls"
import { echo, serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"

/** A node:tls echo server on 127.0.0.1 in the current scope; its port. */
const nodeTlsServer = (maxVersion: Tls.SecureVersion) =>
  Effect.acquireRelease(
    Effect.async<Tls.Server>((resume) => {
      const server = Tls.createServer({
        cert: Fs.readFileSync(fixture("server-chain.pem")),
        key: Fs.readFileSync(fixture("server.key")),
        maxVersion
      }, (socket) => {
        socket.on("error", () => {})
        socket.pipe(socket)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  ).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

/** One connection: a line there and back (so that TLS 1.3 tickets arrive), then its session. */
const roundTrip = (port: number, client: SslContext.ClientContext) =>
  Effect.scoped(Effect.gen(function*() {
    const conn = yield* Ssl.connect("localhost", port, client)
    yield* conn.output.write("ping\n")
    expect(yield* conn.input.readLine).toEqual(Option.some("ping"))
    return yield* conn.session
  }))

describe("client session resumption", () => {
  for (const version of ["TLSv1.3", "TLSv1.2"] as const) {
    it.scopedLive(`${version}: the second connection to a node:tls server resumes, verified, with the certificate the first one verified`, () =>
      Effect.gen(function*() {
        const port = yield* nodeTlsServer(version)
        const client = yield* clientContext()
        const first = yield* roundTrip(port, client)
        expect(first).toMatchObject({ protocol: version, resumed: false, verified: true })
        const second = yield* roundTrip(port, client)
        expect(second).toMatchObject({ protocol: version, resumed: true, verified: true })
        // node:tls hands out no certificate on a resumed connection: the first one's came with the session
        expect(Option.map(second.peerCertificate, (c) => c.fingerprint256)).toEqual(
          Option.map(first.peerCertificate, (c) => c.fingerprint256)
        )
        expect(Option.isSome(second.peerCertificate)).toBe(true)
      }).pipe(Effect.provide(TestLayer)))
  }

  it.scopedLive("against an effect-ssl server too; with setSessionCache(false) nothing resumes", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), echo)
      const client = yield* clientContext()
      expect((yield* roundTrip(listener.address.port, client)).resumed).toBe(false)
      expect((yield* roundTrip(listener.address.port, client)).resumed).toBe(true)
      yield* SslContext.setSessionCache(client, false)
      expect((yield* roundTrip(listener.address.port, client)).resumed).toBe(false)
      expect((yield* roundTrip(listener.address.port, client)).resumed).toBe(false)
    }).pipe(Effect.provide(TestLayer)))

  // Over TCP node:tls gets the session after tls.connect, over a JS stream in its options
  // (workarounds/sessionParsedTwice.ts): both must resume.
  it.scopedLive("a client detecting truncation (TLS through a JS stream) resumes as well", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), echo)
      const client = yield* clientContext()
      yield* SslContext.setDetectTruncation(client, true)
      expect((yield* roundTrip(listener.address.port, client)).resumed).toBe(false)
      expect(yield* roundTrip(listener.address.port, client)).toMatchObject({ resumed: true, verified: true })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("sessions are kept per server: a session from one port is not offered to another", () =>
    Effect.gen(function*() {
      const a = yield* serveOn(yield* serverContext(), echo)
      const b = yield* serveOn(yield* serverContext(), echo)
      const client = yield* clientContext()
      expect((yield* roundTrip(a.address.port, client)).resumed).toBe(false)
      expect((yield* roundTrip(b.address.port, client)).resumed).toBe(false)
      expect((yield* roundTrip(a.address.port, client)).resumed).toBe(true)
      expect((yield* roundTrip(b.address.port, client)).resumed).toBe(true)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a client whose trust changed does not resume what it verified under other roots", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), echo)
      const client = yield* clientContext()
      yield* roundTrip(listener.address.port, client)
      expect((yield* roundTrip(listener.address.port, client)).resumed).toBe(true)
      yield* SslContext.loadVerifyRootCertificates(client, fixture("unknown-ca.pem"))
      expect((yield* roundTrip(listener.address.port, client)).resumed).toBe(false)
    }).pipe(Effect.provide(TestLayer)))
})
