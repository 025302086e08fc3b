/**
 * Certificate verification, both ways: what a client accepts from servers, what a server demands
 * of clients, what `session` reports about the peer, and certificate rotation on a live listener.
 */
import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

const x509 = (name: string) => new Crypto.X509Certificate(Fs.readFileSync(fixture(name)))

/** The typed failure of an effect that must fail (a defect or a success fails the test). */
const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isFailure(exit)) {
      const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
      if (error !== undefined) return Effect.succeed(error)
      return Effect.dieMessage(`expected a typed failure, got cause ${String(exit.cause)}`)
    }
    return Effect.dieMessage("expected a failure, got a success")
  })

const unverifiedClient = Effect.gen(function*() {
  const ctx = yield* SslContext.makeClient()
  yield* SslContext.setVerify(ctx, false)
  return ctx
})

const clientWith = (chain: string, key: string, protocol: "auto" | "tls1.2" | "tls1.3" = "auto") =>
  Effect.gen(function*() {
    const ctx = yield* clientContext(protocol)
    yield* SslContext.loadCertificateChain(ctx, fixture(chain))
    yield* SslContext.loadPrivateKey(ctx, fixture(key))
    return ctx
  })

/** A server context that requires a client certificate issued under the fixture root. */
const verifyingServer = (protocol: "auto" | "tls1.2" | "tls1.3" = "auto") =>
  Effect.gen(function*() {
    const ctx = yield* serverContext("server-chain.pem", "server.key", protocol)
    yield* SslContext.setVerify(ctx, true)
    yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
    return ctx
  })

describe("client verifies the server", () => {
  it.scopedLive("a trusted chain verifies; session describes the server's certificate", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const session = yield* conn.session
      expect(session.verified).toBe(true)
      const cert = Option.getOrThrow(session.peerCertificate)
      expect(cert.subject).toBe("/O=effect-ssl/CN=localhost")
      expect(cert.issuer).toBe("/O=effect-ssl/CN=effect-ssl Test Intermediate CA")
      expect(cert.validFrom).toEqual(new Date("2025-01-01T00:00:00Z"))
      expect(cert.validTo).toEqual(new Date("2124-12-31T23:59:59Z"))
      expect(cert.fingerprint256).toBe(x509("server.pem").fingerprint256)
      expect(cert.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
      expect(cert.subjectAltNames).toContain("DNS:localhost")
      expect(cert.subjectAltNames).toContain("IP Address:127.0.0.1")
      expect(session.cipher).toBe("TLS_AES_256_GCM_SHA384")
      expect(session.alpnProtocol).toEqual(Option.none())
      // and the connection works
      yield* conn.output.write("ping\n")
      expect(yield* conn.input.readLine).toEqual(Option.some("ping"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("connecting by IP address verifies against the IP SAN (and sends no SNI)", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const conn = yield* Ssl.connect("127.0.0.1", listener.address.port, yield* clientContext())
      const session = yield* conn.session
      expect(session.verified).toBe(true)
      expect(session.servername).toEqual(Option.none())
      // the wrong-host certificate has no 127.0.0.1 SAN either
      const wrong = yield* serveOn(yield* serverContext("wrong-host-chain.pem", "wrong-host.key"))
      const error = yield* failure(Ssl.connect("127.0.0.1", wrong.address.port, yield* clientContext()))
      expect(error).toMatchObject({ _tag: "VerifyError", reason: "HostnameMismatch", side: "client" })
    }).pipe(Effect.provide(TestLayer)))

  const badServers = [
    { name: "expired", chain: "expired-chain.pem", key: "expired.key", reason: "Expired", code: "CERT_HAS_EXPIRED" },
    {
      name: "not yet valid",
      chain: "not-yet-valid-chain.pem",
      key: "not-yet-valid.key",
      reason: "NotYetValid",
      code: "CERT_NOT_YET_VALID"
    },
    {
      name: "wrong host",
      chain: "wrong-host-chain.pem",
      key: "wrong-host.key",
      reason: "HostnameMismatch",
      code: "ERR_TLS_CERT_ALTNAME_INVALID"
    },
    {
      name: "self-signed",
      chain: "self-signed.pem",
      key: "self-signed.key",
      reason: "SelfSigned",
      code: "DEPTH_ZERO_SELF_SIGNED_CERT"
    },
    {
      name: "unknown issuer (leaf alone)",
      chain: "unknown-issuer.pem",
      key: "unknown-issuer.key",
      reason: "UnknownIssuer",
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    },
    {
      name: "unknown issuer (with its root)",
      chain: "unknown-issuer-chain.pem",
      key: "unknown-issuer.key",
      reason: "UnknownIssuer",
      code: "SELF_SIGNED_CERT_IN_CHAIN"
    },
    {
      name: "missing intermediate",
      chain: "missing-intermediate.pem",
      key: "server.key",
      reason: "UnknownIssuer",
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    }
  ] as const

  for (const bad of badServers) {
    it.scopedLive(`${bad.name}: VerifyError ${bad.reason}; setVerify(ctx, false) connects anyway`, () =>
      Effect.gen(function*() {
        const listener = yield* serveOn(yield* serverContext(bad.chain, bad.key))
        const error = yield* failure(Ssl.connect("localhost", listener.address.port, yield* clientContext()))
        expect(error).toBeInstanceOf(SslError.VerifyError)
        expect(error).toMatchObject({ reason: bad.reason, code: bad.code, side: "client" })
        expect(error.message).toContain(`localhost:${listener.address.port}`)

        const conn = yield* Ssl.connect("localhost", listener.address.port, yield* unverifiedClient)
        const session = yield* conn.session
        expect(session.verified).toBe(false)
        expect(Option.isSome(session.peerCertificate)).toBe(true)
        yield* conn.output.write("still talking\n")
        expect(yield* conn.input.readLine).toEqual(Option.some("still talking"))
      }).pipe(Effect.provide(TestLayer)))
  }

  // Racket 9.3 checks the host name after the handshake when only the chain check is off
  // ("certificate not valid for hostname").
  it.scopedLive("chain verification off, host-name verification on again: the host name is still checked", () =>
    Effect.gen(function*() {
      const hostOnly = yield* SslContext.makeClient()
      yield* SslContext.setVerify(hostOnly, false)
      yield* SslContext.setVerifyHostname(hostOnly, true)
      // A certificate for example.com, by name and by address.
      const wrongHost = yield* serveOn(yield* serverContext("wrong-host-chain.pem", "wrong-host.key"))
      for (const host of ["localhost", "127.0.0.1"]) {
        const error = yield* failure(Ssl.connect(host, wrongHost.address.port, hostOnly))
        expect(error).toBeInstanceOf(SslError.VerifyError)
        expect(error).toMatchObject({ reason: "HostnameMismatch", side: "client" })
        expect(error.message).toContain(`${host}:${wrongHost.address.port}`)
      }
      // The right host, under a root this context does not trust (none loaded): it connects,
      // unverified.
      const rightHost = yield* serveOn(yield* serverContext())
      for (const host of ["localhost", "127.0.0.1"]) {
        const conn = yield* Ssl.connect(host, rightHost.address.port, hostOnly)
        expect((yield* conn.session).verified).toBe(false)
        yield* conn.output.write("right host\n")
        expect(yield* conn.input.readLine).toEqual(Option.some("right host"))
      }
      // Both off: the wrong host connects too.
      const conn = yield* Ssl.connect("localhost", wrongHost.address.port, yield* unverifiedClient)
      expect((yield* conn.session).verified).toBe(false)
      yield* conn.output.write("anything goes\n")
      expect(yield* conn.input.readLine).toEqual(Option.some("anything goes"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a client refusing the server aborts: a server detecting truncation sees its connection fail, never end cleanly", () =>
    Effect.gen(function*() {
      // (node:tls's client, like ours, cannot send an alert once it has seen the certificate: it
      // closes, and a server that does not detect truncation takes that for an end of input)
      const context = yield* serverContext("expired-chain.pem", "expired.key")
      yield* SslContext.setDetectTruncation(context, true)
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context })
      // node:tls verifies after the handshake, so the server's handshake completes; the client's
      // failed connect (in the test's long-lived scope) must release its socket at once.
      const server = yield* Effect.fork(Effect.scoped(failure(Effect.flatMap(Ssl.accept(listener), (conn) => conn.input.read()))))
      const clientError = yield* failure(Ssl.connect("localhost", listener.address.port, yield* clientContext()))
      expect(clientError).toMatchObject({ _tag: "VerifyError", reason: "Expired" })
      // The client closes as soon as it has judged the certificate: its last handshake flight
      // may or may not have gone out first, so the server's accept or its first read fails.
      const serverError = yield* Fiber.join(server)
      expect([`HandshakeError:PeerClosed`, `IoError:TruncatedEof`]).toContain(`${serverError._tag}:${serverError.reason}`)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a default client context does not trust the fixture root until it is loaded", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const error = yield* failure(Ssl.connect("localhost", listener.address.port, "auto"))
      expect(error).toMatchObject({ _tag: "VerifyError", reason: "UnknownIssuer" })
    }).pipe(Effect.provide(TestLayer)))
})

describe("server verifies the client", () => {
  it.scopedLive("a client certificate under a loaded root is accepted; both sessions say so", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* verifyingServer() })
      const server = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) =>
        Effect.zipLeft(conn.session, Effect.zipRight(conn.output.write("hi\n"), conn.output.close)))))
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientWith("client-chain.pem", "client.key"))
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
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* verifyingServer("tls1.2") })
      const server = yield* Effect.fork(Effect.scoped(failure(Ssl.accept(listener))))
      const clientError = yield* failure(Ssl.connect("localhost", listener.address.port, yield* clientContext("tls1.2")))
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
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* verifyingServer("tls1.3") })
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
        const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* verifyingServer(protocol) })
        // Accepted into the test's own scope: the failed accept must release its socket at once,
        // or the client below would wait for the end of the test.
        const server = yield* Effect.fork(failure(Ssl.accept(listener)))
        const client = yield* clientWith("untrusted-client.pem", "untrusted-client.key", protocol)
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
        Ssl.connect("localhost", a.address.port, yield* clientWith("client-chain.pem", "client.key")),
        (conn) => conn.input.read()
      )))
      expect(yield* Fiber.join(refused)).toMatchObject({ _tag: "VerifyError", reason: "UnknownIssuer", side: "server" })

      // unknown CA suggested next to the real root: its client is still refused, the root's accepted
      const mixed = yield* verifyingServer()
      yield* SslContext.loadSuggestedCertificateAuthorities(mixed, fixture("unknown-ca.pem"))
      const b = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: mixed })
      const refusedToo = yield* Effect.fork(Effect.scoped(failure(Ssl.accept(b))))
      yield* Effect.exit(Effect.scoped(Effect.flatMap(
        Ssl.connect("localhost", b.address.port, yield* clientWith("untrusted-client.pem", "untrusted-client.key")),
        (conn) => conn.input.read()
      )))
      expect(yield* Fiber.join(refusedToo)).toMatchObject({ _tag: "VerifyError", reason: "UnknownIssuer" })
      const accepted = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(b), (conn) => conn.session)))
      yield* Effect.scoped(Ssl.connect("localhost", b.address.port, yield* clientWith("client-chain.pem", "client.key")))
      expect((yield* Fiber.join(accepted)).verified).toBe(true)
    }).pipe(Effect.provide(TestLayer)))
})

describe("context changes apply to later connections", () => {
  const subjectSeen = (port: number) =>
    Effect.scoped(Effect.gen(function*() {
      const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
      const session = yield* conn.session
      expect(session.verified).toBe(true)
      return Option.getOrThrow(session.peerCertificate).subject
    }))

  it.scopedLive("loadCertificateChain + loadPrivateKey, then setIdentity, rotate a live listener", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const port = listener.address.port
      const before = yield* Ssl.connect("localhost", port, yield* clientContext())
      expect(yield* subjectSeen(port)).toBe("/O=effect-ssl/CN=localhost")

      yield* SslContext.loadCertificateChain(listener, fixture("other-server-chain.pem"))
      yield* SslContext.loadPrivateKey(listener, fixture("other-server.key"))
      expect(yield* subjectSeen(port)).toBe("/O=effect-ssl Rotated/CN=localhost")

      yield* SslContext.setIdentity(listener, { chain: fixture("server-chain.pem"), key: fixture("server.key") })
      expect(yield* subjectSeen(port)).toBe("/O=effect-ssl/CN=localhost")
      yield* SslContext.setIdentity(listener, {
        chain: fixture("other-server-chain.pem"),
        key: fixture("other-server.key")
      })
      expect(yield* subjectSeen(port)).toBe("/O=effect-ssl Rotated/CN=localhost")

      // the connection made before the rotations is untouched
      yield* before.output.write("still here\n")
      expect(yield* before.input.readLine).toEqual(Option.some("still here"))
      expect(Option.getOrThrow((yield* before.session).peerCertificate).subject).toBe("/O=effect-ssl/CN=localhost")
    }).pipe(Effect.provide(TestLayer)))
})
