/**
 * Interop with the `openssl` command line: effect-ssl's client against `openssl s_server` (TLS 1.2
 * and 1.3, with a client certificate it requires, and the alerts it sends when it refuses one),
 * effect-ssl's server against `openssl s_client` (verified by it, refused by it, asking it for a
 * certificate). Session resumption with s_client -reconnect: Handshake.test.ts; s_client
 * -starttls: WrapStartTls.test.ts; every kind of certificate: VerificationMatrix.test.ts.
 */
import { Ssl, SslContext } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { spawnOpenssl, sServer } from "../../core/test/helpers/Openssl.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

const versions = [
  { name: "TLS 1.2", flag: "-tls1_2", protocol: "TLSv1.2" },
  { name: "TLS 1.3", flag: "-tls1_3", protocol: "TLSv1.3" }
] as const

const withClientIdentity = Effect.gen(function*() {
  const ctx = yield* clientContext()
  yield* SslContext.loadCertificateChain(ctx, fixture("client-chain.pem"))
  yield* SslContext.loadPrivateKey(ctx, fixture("client.key"))
  return ctx
})

describe("effect-ssl client against openssl s_server", () => {
  for (const version of versions) {
    it.scopedLive(`${version.name}: verified handshake, bytes both ways (s_server -rev)`, () =>
      Effect.gen(function*() {
        const { peer, port } = yield* sServer([version.flag, "-rev"])
        const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
        const session = yield* conn.session
        expect(session.protocol).toBe(version.protocol)
        expect(session.verified).toBe(true)
        expect(Option.map(session.peerCertificate, (c) => c.subject)).toEqual(Option.some("/O=effect-ssl/CN=localhost"))
        yield* conn.output.write("hello from effect-ssl\n")
        expect(yield* conn.input.readLine).toEqual(Option.some("lss-tceffe morf olleh"))
        yield* conn.output.write("second line\n")
        expect(yield* conn.input.readLine).toEqual(Option.some("enil dnoces"))
        yield* peer.waitFor(/Protocol version: TLSv1\.[23]/)
        expect(peer.output()).toContain(`Protocol version: ${version.protocol}`)
        expect(peer.output()).toContain("No peer certificate")
      }).pipe(Effect.provide(TestLayer)))

    it.scopedLive(`${version.name}: with a client certificate that s_server requires (-Verify 1)`, () =>
      Effect.gen(function*() {
        const { peer, port } = yield* sServer([version.flag, "-rev", "-Verify", "1", "-CAfile", "root-ca.pem"])
        const conn = yield* Ssl.connect("localhost", port, yield* withClientIdentity)
        expect((yield* conn.session).protocol).toBe(version.protocol)
        yield* conn.output.write("abc\n")
        expect(yield* conn.input.readLine).toEqual(Option.some("cba"))
        // s_server verified the chain we sent (leaf + intermediate) against its root.
        yield* peer.waitFor(/Verification: /)
        expect(peer.output()).toContain("Peer certificate: O = effect-ssl, CN = effect-ssl test client")
        expect(peer.output()).toContain("Verification: OK")
      }).pipe(Effect.provide(TestLayer)))
  }
})

describe("s_server rejecting effect-ssl's client certificate (real alerts)", () => {
  const untrusted = Effect.gen(function*() {
    const ctx = yield* clientContext()
    yield* SslContext.loadCertificateChain(ctx, fixture("untrusted-client.pem"))
    yield* SslContext.loadPrivateKey(ctx, fixture("untrusted-client.key"))
    return ctx
  })
  const requireCert = ["-Verify", "1", "-CAfile", "root-ca.pem", "-verify_return_error", "-rev"]

  it.scopedLive("TLS 1.2: an untrusted certificate fails connect with the unknown_ca alert", () =>
    Effect.gen(function*() {
      const { port } = yield* sServer(["-tls1_2", ...requireCert])
      const error = yield* Effect.flip(Ssl.connect("localhost", port, yield* untrusted))
      expect(error).toMatchObject({
        _tag: "HandshakeError",
        reason: "AlertReceived",
        side: "client",
        code: "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"
      })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("TLS 1.3: connect succeeds, the alert fails the first read as a HandshakeError", () =>
    Effect.gen(function*() {
      const { port } = yield* sServer(["-tls1_3", ...requireCert])
      const conn = yield* Ssl.connect("localhost", port, yield* untrusted)
      const error = yield* Effect.flip(conn.input.read())
      expect(error).toMatchObject({
        _tag: "HandshakeError",
        reason: "AlertReceived",
        side: "client",
        code: "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"
      })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("TLS 1.3: no certificate at all: HandshakeError CertificateRequired on the first read", () =>
    Effect.gen(function*() {
      const { port } = yield* sServer(["-tls1_3", ...requireCert])
      const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
      const error = yield* Effect.flip(conn.input.read())
      expect(error).toMatchObject({
        _tag: "HandshakeError",
        reason: "CertificateRequired",
        code: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED"
      })
    }).pipe(Effect.provide(TestLayer)))
})

describe("openssl s_client against an effect-ssl server", () => {
  it.scopedLive("s_client refusing an expired server certificate fails the accept with its alert", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, {
        hostname: "127.0.0.1",
        context: yield* serverContext("expired-chain.pem", "expired.key")
      })
      const server = yield* Effect.fork(Effect.scoped(Effect.flip(Ssl.accept(listener))))
      const client = yield* spawnOpenssl([
        "s_client",
        "-connect",
        `127.0.0.1:${listener.address.port}`,
        "-CAfile",
        "root-ca.pem",
        "-verify_return_error",
        "-servername",
        "localhost"
      ])
      const error = yield* Fiber.join(server)
      expect(error).toMatchObject({
        _tag: "HandshakeError",
        reason: "AlertReceived",
        side: "server",
        code: "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED"
      })
      yield* client.exited
      expect(client.output()).toMatch(/certificate has expired/)
    }).pipe(Effect.provide(TestLayer)))

  for (const version of versions) {
    it.scopedLive(`${version.name}: handshake, bytes both ways, "Verify return code: 0 (ok)"`, () =>
      Effect.gen(function*() {
        const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() })
        const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const conn = yield* Ssl.accept(listener)
          yield* conn.output.write("hello from effect-ssl\n")
          const line = yield* conn.input.readLine
          const session = yield* conn.session
          return { line, session }
        })))
        const client = yield* spawnOpenssl([
          "s_client",
          version.flag,
          "-connect",
          `127.0.0.1:${listener.address.port}`,
          "-CAfile",
          "root-ca.pem",
          "-verify_return_error",
          "-verify_hostname",
          "localhost",
          "-servername",
          "localhost",
          "-nocommands"
        ])
        yield* client.waitFor(/hello from effect-ssl/)
        yield* client.write("hello from s_client\n")
        const { line, session } = yield* Fiber.join(server)
        expect(line).toEqual(Option.some("hello from s_client"))
        expect(session.protocol).toBe(version.protocol)
        expect(session.servername).toEqual(Option.some("localhost"))
        expect(session.verified).toBe(false)
        expect(session.peerCertificate).toEqual(Option.none())
        yield* client.endInput
        // The server's scope ended (close_notify, then the socket is destroyed): s_client exits.
        yield* client.exited
        expect(client.output()).toContain("Verify return code: 0 (ok)")
        expect(client.output()).toContain(`Protocol  : ${version.protocol}`)
        expect(client.output()).toMatch(/subject=O = effect-ssl, CN = localhost/)
      }).pipe(Effect.provide(TestLayer)))
  }

  it.scopedLive("the certificate request lists the suggested CAs; a client certificate is verified", () =>
    Effect.gen(function*() {
      const ctx = yield* serverContext()
      yield* SslContext.setVerify(ctx, true)
      yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
      // A CA that is suggested but not trusted: it must be named in the request all the same.
      yield* SslContext.loadSuggestedCertificateAuthorities(ctx, fixture("unknown-ca.pem"))
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: ctx })
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.accept(listener)
        yield* conn.output.write("welcome\n")
        const line = yield* conn.input.readLine
        return { line, session: yield* conn.session }
      })))
      const client = yield* spawnOpenssl([
        "s_client",
        "-connect",
        `127.0.0.1:${listener.address.port}`,
        "-CAfile",
        "root-ca.pem",
        "-verify_return_error",
        "-servername",
        "localhost",
        "-cert",
        "client.pem",
        "-key",
        "client.key",
        "-cert_chain",
        "intermediate-ca.pem",
        "-nocommands"
      ])
      yield* client.waitFor(/welcome/)
      yield* client.write("it's me\n")
      const { line, session } = yield* Fiber.join(server)
      expect(line).toEqual(Option.some("it's me"))
      expect(session.verified).toBe(true)
      expect(Option.map(session.peerCertificate, (c) => c.subject)).toEqual(
        Option.some("/O=effect-ssl/CN=effect-ssl test client")
      )
      yield* client.endInput
      yield* client.exited
      const names = client.output().match(
        /Acceptable client certificate CA names\n((?:.+\n)+?)(?:Requested|Client Certificate Types|---)/
      )
      expect(names).not.toBeNull()
      expect(names![1]).toContain("O = effect-ssl, CN = effect-ssl Unknown CA")
      // node:tls names every trusted root as well: it has no list separate from the trust store.
      expect(names![1]).toContain("O = effect-ssl, CN = effect-ssl Test Root CA")
    }).pipe(Effect.provide(TestLayer)))
})
