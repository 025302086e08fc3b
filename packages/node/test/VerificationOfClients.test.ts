/**
 * A server verifying its clients, over real handshakes: a required client certificate (present,
 * missing, untrusted, on TLS 1.2 and TLS 1.3, where the client learns of a refusal at different
 * moments), one that is asked for but not required (try-verify), suggested CAs that are not
 * trusted roots, and pinned public keys.
 */
import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { acceptOne } from "../../core/test/helpers/Connections.js"
import {
  clientContext,
  clientWithCertificate,
  requiringClientCertificates,
  serverContext,
  TestLayer
} from "../../core/test/helpers/Contexts.js"
import { failure } from "../../core/test/helpers/Expect.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { opensslPin } from "../../core/test/helpers/Openssl.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

const x509 = (name: string) => new Crypto.X509Certificate(Fs.readFileSync(fixture(name)))

describe("server verifies the client", () => {
  it.scopedLive("a client certificate under a loaded root is accepted; both sessions say so", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* requiringClientCertificates() })
      const server = yield* Effect.fork(
        Effect.scoped(
          Effect.flatMap(
            Ssl.accept(listener),
            (conn) => Effect.zipLeft(conn.session, Effect.zipRight(conn.output.write("hi\n"), conn.output.close))
          )
        )
      )
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientWithCertificate())
      expect(yield* conn.input.readLine).toEqual(Option.some("hi"))
      const serverSession = yield* Fiber.join(server)
      expect(serverSession.verified).toBe(true)
      const cert = Option.getOrThrow(serverSession.peerCertificate)
      expect(cert.subject).toBe("/O=effect-ssl/CN=effect-ssl test client")
      expect(cert.issuer).toBe("/O=effect-ssl/CN=effect-ssl Test Intermediate CA")
      expect(cert.subjectAltNames).toEqual(["DNS:client.example.test"])
      expect(cert.fingerprint256).toBe(x509("client.pem").fingerprint256)
      expect((yield* conn.session).verified).toBe(true)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("TLS 1.2, no client certificate: both handshakes fail with typed errors", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, {
        hostname: "127.0.0.1",
        context: yield* requiringClientCertificates("tls1.2")
      })
      const server = yield* Effect.fork(Effect.scoped(failure(Ssl.accept(listener))))
      const clientError = yield* failure(
        Ssl.connect("localhost", listener.address.port, yield* clientContext("tls1.2"))
      )
      const serverError = yield* Fiber.join(server)
      expect(serverError).toMatchObject({ _tag: "HandshakeError", reason: "CertificateRequired", side: "server" })
      // TLS 1.2 has no certificate_required alert: OpenSSL aborts with handshake_failure.
      expect(clientError).toMatchObject({
        _tag: "HandshakeError",
        side: "client",
        reason: "AlertReceived",
        code: "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE"
      })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("TLS 1.3, no client certificate: the server fails; the client's first read does", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, {
        hostname: "127.0.0.1",
        context: yield* requiringClientCertificates("tls1.3")
      })
      const server = yield* Effect.fork(Effect.scoped(failure(Ssl.accept(listener))))
      // In TLS 1.3 the client's handshake is over before the server has seen its (empty) certificate.
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext("tls1.3"))
      const serverError = yield* Fiber.join(server)
      expect(serverError).toMatchObject({ _tag: "HandshakeError", reason: "CertificateRequired", side: "server" })
      const readError = yield* failure(conn.input.read())
      expect(readError).toMatchObject({
        _tag: "HandshakeError",
        side: "client",
        reason: "CertificateRequired",
        code: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED"
      })
    }).pipe(Effect.provide(TestLayer)))

  for (const protocol of ["tls1.2", "tls1.3"] as const) {
    it.scopedLive(`${protocol}: an untrusted client certificate fails on the server; the client sees a typed error`, () =>
      Effect.gen(function*() {
        const listener = yield* Ssl.listen(0, {
          hostname: "127.0.0.1",
          context: yield* requiringClientCertificates(protocol)
        })
        // Accepted into the test's own scope: the failed accept must release its socket at once,
        // or the client below would wait for the end of the test.
        const server = yield* Effect.fork(failure(Ssl.accept(listener)))
        const client = yield* clientWithCertificate("untrusted-client.pem", "untrusted-client.key", protocol)
        const clientError = yield* failure(Effect.gen(function*() {
          const conn = yield* Ssl.connect("localhost", listener.address.port, client)
          return yield* conn.input.read()
        }))
        const serverError = yield* Fiber.join(server)
        expect(serverError).toMatchObject({ _tag: "VerifyError", reason: "UnknownIssuer", side: "server" })
        // Node verifies a client's chain only after the handshake (its OpenSSL verify callback
        // always says yes), so no alert can be sent: the server resets the connection, which the
        // client's handshake (TLS 1.2) or first read (TLS 1.3) reports as a reset, never as a
        // clean end of input.
        expect(SslError.isSslError(clientError)).toBe(true)
        expect(clientError).toMatchObject({ reason: "Reset" })
      }).pipe(Effect.provide(TestLayer)))
  }

  it.scopedLive("suggested CAs are not trusted unless also loaded as roots", () =>
    Effect.gen(function*() {
      // root suggested, not loaded: a client under it is refused
      const onlySuggested = yield* serverContext()
      yield* SslContext.setVerify(onlySuggested, true)
      yield* SslContext.loadSuggestedCertificateAuthorities(onlySuggested, fixture("root-ca.pem"))
      const a = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: onlySuggested })
      const refused = yield* Effect.fork(Effect.scoped(failure(Ssl.accept(a))))
      yield* Effect.exit(Effect.scoped(Effect.flatMap(
        Ssl.connect("localhost", a.address.port, yield* clientWithCertificate()),
        (conn) => conn.input.read()
      )))
      expect(yield* Fiber.join(refused)).toMatchObject({ _tag: "VerifyError", reason: "UnknownIssuer", side: "server" })

      // unknown CA suggested next to the real root: its client is still refused, the root's accepted
      const mixed = yield* requiringClientCertificates()
      yield* SslContext.loadSuggestedCertificateAuthorities(mixed, fixture("unknown-ca.pem"))
      const b = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: mixed })
      const refusedToo = yield* Effect.fork(Effect.scoped(failure(Ssl.accept(b))))
      yield* Effect.exit(Effect.scoped(Effect.flatMap(
        Ssl.connect(
          "localhost",
          b.address.port,
          yield* clientWithCertificate("untrusted-client.pem", "untrusted-client.key")
        ),
        (conn) => conn.input.read()
      )))
      expect(yield* Fiber.join(refusedToo)).toMatchObject({ _tag: "VerifyError", reason: "UnknownIssuer" })
      const accepted = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(b), (conn) => conn.session)))
      yield* Effect.scoped(Ssl.connect("localhost", b.address.port, yield* clientWithCertificate()))
      expect((yield* Fiber.join(accepted)).verified).toBe(true)
    }).pipe(Effect.provide(TestLayer)))
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
      yield* Ssl.connect("localhost", listener.address.port, yield* clientWithCertificate())
      const session = yield* Effect.flatMap(good.connection, (c) => c.session)
      expect(session.verified).toBe(true)
      expect(Option.getOrThrow(session.peerCertificate).subject).toContain("CN=effect-ssl test client")

      const bad = yield* acceptOne(listener)
      yield* Effect.either(
        Ssl.connect(
          "localhost",
          listener.address.port,
          yield* clientWithCertificate("untrusted-client.pem", "untrusted-client.key")
        )
      )
      const refused = yield* Effect.flip(bad.connection)
      expect(refused).toMatchObject({ _tag: "VerifyError", side: "server", reason: "UnknownIssuer" })
    }).pipe(Effect.provide(TestLayer)))
})

describe("a server with pinned public keys", () => {
  it.scopedLive("accepts a client whose chain holds a pinned key and refuses one whose chain does not", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setVerify(server, true)
      yield* SslContext.loadVerifyRootCertificates(server, fixture("root-ca.pem"))
      yield* SslContext.setPinnedPublicKeys(server, [opensslPin("client.pem")])
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const client = yield* clientWithCertificate()
      const accepted = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => conn.session)))
      yield* Effect.scoped(Ssl.connect("localhost", listener.address.port, client))
      expect((yield* accepted.await)._tag).toBe("Success")

      yield* SslContext.setPinnedPublicKeys(server, [opensslPin("unknown-ca.pem")])
      const refused = yield* Effect.fork(Effect.scoped(Effect.flip(Ssl.accept(listener))))
      yield* Effect.scoped(Effect.ignore(Effect.flatMap(
        Ssl.connect("localhost", listener.address.port, client),
        (conn) => conn.input.read()
      )))
      expect(yield* refused.await).toMatchObject({
        _tag: "Success",
        value: { _tag: "VerifyError", reason: "PinMismatch", side: "server" }
      })
    }).pipe(Effect.provide(TestLayer)))
})
