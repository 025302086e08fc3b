/**
 * A client verifying its server, over real handshakes: the chain (trusted, expired, not yet valid,
 * self-signed, unknown issuer, missing intermediate), the host name (by name, by IP address, and
 * apart from the chain), the certificate the session then describes (as the `openssl` command
 * sees it), and pinned public keys. What a server demands of its clients:
 * VerificationOfClients.test.ts; every kind of certificate against `openssl`'s verdict:
 * VerificationMatrix.test.ts.
 */
import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Tls from "node:tls"
import { echo, serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { failure } from "../../core/test/helpers/Expect.js"
import { fixture, fixturesDir } from "../../core/test/helpers/Fixtures.js"
import { opensslPin } from "../../core/test/helpers/Openssl.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"
import { describeCertificate, parsedCertificate } from "../src/internal/x509.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

const fixtureBytes = (name: string) => Fs.readFileSync(fixture(name))
const x509 = (name: string) => new Crypto.X509Certificate(fixtureBytes(name))
const x509Or = (name: string) => {
  try {
    return x509(name)
  } catch {
    return undefined
  }
}

const unverifiedClient = Effect.gen(function*() {
  const ctx = yield* SslContext.makeClient()
  yield* SslContext.setVerify(ctx, false)
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
      const server = yield* Effect.fork(
        Effect.scoped(failure(Effect.flatMap(Ssl.accept(listener), (conn) => conn.input.read())))
      )
      const clientError = yield* failure(Ssl.connect("localhost", listener.address.port, yield* clientContext()))
      expect(clientError).toMatchObject({ _tag: "VerifyError", reason: "Expired" })
      // The client closes as soon as it has judged the certificate: its last handshake flight
      // may or may not have gone out first, so the server's accept or its first read fails.
      const serverError = yield* Fiber.join(server)
      expect([`HandshakeError:PeerClosed`, `IoError:TruncatedEof`]).toContain(
        `${serverError._tag}:${serverError.reason}`
      )
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a default client context does not trust the fixture root until it is loaded", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const error = yield* failure(Ssl.connect("localhost", listener.address.port, "auto"))
      expect(error).toMatchObject({ _tag: "VerifyError", reason: "UnknownIssuer" })
    }).pipe(Effect.provide(TestLayer)))
})

describe("host-name verification apart from the chain", () => {
  it.scopedLive("off: a trusted certificate for another host is accepted; the chain is still checked", () =>
    Effect.gen(function*() {
      const wrongHost = yield* serveOn(yield* serverContext("wrong-host-chain.pem", "wrong-host.key"))
      const expired = yield* serveOn(yield* serverContext("expired-chain.pem", "expired.key"))
      const client = yield* clientContext()
      const refused = yield* Effect.flip(Ssl.connect("localhost", wrongHost.address.port, client))
      expect(refused).toMatchObject({ _tag: "VerifyError", reason: "HostnameMismatch" })

      yield* SslContext.setVerifyHostname(client, false)
      const conn = yield* Ssl.connect("localhost", wrongHost.address.port, client)
      const session = yield* conn.session
      expect(session.verified).toBe(true)
      const peer = Option.getOrThrow(session.peerCertificate)
      expect(Ssl.checkHostname(peer, "example.com")).toBe(true)
      expect(Ssl.checkHostname(peer, "localhost")).toBe(false)
      expect(Ssl.peerHostnames(peer)).toEqual(["example.com"])

      const stillChecked = yield* Effect.flip(Ssl.connect("localhost", expired.address.port, client))
      expect(stillChecked).toMatchObject({ _tag: "VerifyError", reason: "Expired" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a wildcard certificate matches one label, as Racket's ssl-peer-check-hostname", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext("wildcard-chain.pem", "wildcard.key"))
      const client = yield* clientContext()
      yield* SslContext.setVerifyHostname(client, false)
      const peer = Option.getOrThrow(
        (yield* (yield* Ssl.connect("127.0.0.1", listener.address.port, client)).session).peerCertificate
      )
      expect(Ssl.checkHostname(peer, "www.example.test")).toBe(true)
      expect(Ssl.checkHostname(peer, "a.b.example.test")).toBe(false)
      expect(Ssl.checkHostname(peer, "example.test")).toBe(false)
    }).pipe(Effect.provide(TestLayer)))
})

// ---------------------------------------------------------------------------------------------
// The peer certificate a session describes

/** What the openssl command says of a certificate file. */
const openssl = (name: string) => {
  const run = (script: string) =>
    ChildProcess.execFileSync("bash", ["-c", script], { cwd: fixturesDir, env: { ...process.env, F: name } })
  return {
    der: new Uint8Array(run("openssl x509 -in \"$F\" -outform der")),
    serialNumber: run("openssl x509 -in \"$F\" -noout -serial").toString().trim().replace(/^serial=/, ""),
    spkiSha256: opensslPin(name)
  }
}

const leaves = ["server.pem", "server-ec.pem", "server-ed25519.pem", "client.pem"] as const

/** The peer certificate of a connection to a server with `chain` and `key`, unverified. */
const peerOf = (chain: string, key: string) =>
  Effect.gen(function*() {
    const listener = yield* serveOn(yield* serverContext(chain, key))
    const client = yield* SslContext.makeClient()
    yield* SslContext.setVerify(client, false)
    const conn = yield* Ssl.connect("127.0.0.1", listener.address.port, client)
    return Option.getOrThrow((yield* conn.session).peerCertificate)
  })

describe("describeCertificate", () => {
  for (const name of leaves) {
    it(`${name}: der, serialNumber and spkiSha256 are what the openssl command prints`, () => {
      const described = describeCertificate(new Crypto.X509Certificate(Fs.readFileSync(fixture(name))))
      expect({
        der: described.der,
        serialNumber: described.serialNumber,
        spkiSha256: described.spkiSha256
      }).toEqual(openssl(name))
      // plain bytes, not a Buffer (whose slice shares memory)
      expect(Object.getPrototypeOf(described.der)).toBe(Uint8Array.prototype)
    })
  }

  it("keeps what it had: subject and issuer in OpenSSL's one-line form, alt names, dates, fingerprint", () => {
    const certificate = new Crypto.X509Certificate(Fs.readFileSync(fixture("server.pem")))
    const described = describeCertificate(certificate)
    expect(described.subject).toBe("/O=effect-ssl/CN=localhost")
    expect(described.issuer).toBe("/O=effect-ssl/CN=effect-ssl Test Intermediate CA")
    expect(described.subjectAltNames).toEqual(["DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"])
    expect(described.fingerprint256).toBe(certificate.fingerprint256)
    expect(described.validFrom).toEqual(new Date("2025-01-01T00:00:00Z"))
    expect(described.validTo).toEqual(new Date("2124-12-31T23:59:59Z"))
  })
})

describe("the peer certificate of a handshake", () => {
  it.scopedLive("carries der, serialNumber and spkiSha256 as the openssl command prints them", () =>
    Effect.gen(function*() {
      for (
        const [chain, key, leaf] of [
          ["server-chain.pem", "server.key", "server.pem"],
          ["server-ed25519-chain.pem", "server-ed25519.key", "server-ed25519.pem"]
        ] as const
      ) {
        const peer = yield* peerOf(chain, key)
        expect({ der: peer.der, serialNumber: peer.serialNumber, spkiSha256: peer.spkiSha256 }).toEqual(openssl(leaf))
      }
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a host name written absolute (localhost.) is the same name: the handshake verifies, a wrong one is still refused", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const client = yield* clientContext()
      const verifiedAs = (hostname: string) =>
        Effect.scoped(Effect.gen(function*() {
          const plain = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
          const conn = yield* Ssl.wrap(plain, { mode: "connect", hostname, context: client })
          return (yield* conn.session).verified
        }))
      expect(yield* verifiedAs("localhost.")).toBe(true)
      expect(yield* Effect.flip(verifiedAs("otherhost."))).toMatchObject({
        _tag: "VerifyError",
        reason: "HostnameMismatch"
      })
      const peer = yield* peerOf("server-chain.pem", "server.key")
      expect(Ssl.checkHostname(peer, "localhost.")).toBe(true)
      expect(Ssl.checkHostname(peer, "localhost..")).toBe(false)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a CN with a slash in it is one name: Ssl.checkHostname does not take its first half", () =>
    Effect.gen(function*() {
      const peer = yield* peerOf("cn-slash.pem", "cn-slash.key")
      expect(Ssl.checkHostname(peer, "victim.example")).toBe(false)
      expect(Ssl.checkHostname(peer, "admin")).toBe(false)
      expect(Ssl.peerHostnames(peer)).toEqual(["victim.example/admin"])
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("two CNs and no alt names: both are names it is valid for, as OpenSSL checks them", () =>
    Effect.gen(function*() {
      const peer = yield* peerOf("two-cn.pem", "two-cn.key")
      expect(Ssl.checkHostname(peer, "first.example")).toBe(true)
      expect(Ssl.checkHostname(peer, "second.example")).toBe(true)
      expect(Ssl.checkHostname(peer, "third.example")).toBe(false)
      expect(Ssl.peerHostnames(peer)).toEqual(["first.example", "second.example"])
    }).pipe(Effect.provide(TestLayer)))
})

describe("the host name a client verifies is the one it was given", () => {
  /** Whether a client given `hostname` takes the server on `port` for verified (over Ssl.wrap). */
  const wrapAs = (port: number, hostname: string, context: SslContext.ClientContext) =>
    Effect.scoped(Effect.gen(function*() {
      const plain = yield* NodeSsl.tcpConnect("127.0.0.1", port)
      const conn = yield* Ssl.wrap(plain, { mode: "connect", hostname, context })
      return (yield* conn.session).verified
    }))

  // OpenSSL's X509_check_host takes a name with a leading dot for "any name under it" (its
  // client-side sub-domain pattern); a host name is never a pattern (node:tls refused these,
  // CPython's ssl refuses such a server_hostname outright).
  it.scopedLive("a name with a leading dot matches no certificate: not a pattern for every name under it", () =>
    Effect.gen(function*() {
      const exampleCom = yield* serveOn(yield* serverContext("wrong-host-chain.pem", "wrong-host.key"))
      const manySans = yield* serveOn(yield* serverContext("many-sans-chain.pem", "many-sans.key"))
      const hostOnly = yield* SslContext.makeClient()
      yield* SslContext.setVerify(hostOnly, false)
      yield* SslContext.setVerifyHostname(hostOnly, true)
      for (
        const [port, hostname] of [[exampleCom.address.port, ".com"], [manySans.address.port, ".example.test"]] as const
      ) {
        for (const context of [yield* clientContext(), hostOnly]) {
          expect(yield* Effect.flip(wrapAs(port, hostname, context))).toMatchObject({
            _tag: "VerifyError",
            reason: "HostnameMismatch"
          })
        }
      }
      const peer = yield* peerOf("wrong-host-chain.pem", "wrong-host.key")
      expect(Ssl.checkHostname(peer, "example.com")).toBe(true)
      expect(Ssl.checkHostname(peer, ".com")).toBe(false)
      expect(Ssl.checkHostname(peer, ".example.com")).toBe(false)
    }).pipe(Effect.provide(TestLayer)))

  // node:tls hands its identity check "localhost" when it has no name (neither servername nor
  // host): an empty name must not be checked as that one. Ssl.wrap now refuses it before the
  // handshake, as Ssl.connect does; the handshake's own check no longer takes node:tls's name.
  it.scopedLive("an empty host name over Ssl.wrap is not taken for localhost: InvalidArgumentError hostname", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const error = yield* Effect.flip(wrapAs(listener.address.port, "", yield* clientContext()))
      expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "hostname" })
    }).pipe(Effect.provide(TestLayer)))

  // A zone ("%lo") says which interface reaches a link-local address; the certificate names the
  // address. node:tls matched it so; OpenSSL refuses to parse it.
  it.scopedLive("an IPv6 address with a zone is checked as the address", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "::1", context: yield* serverContext() })
      yield* Effect.forkScoped(Ssl.serve(listener, echo))
      const conn = yield* Ssl.connect("::1%lo", listener.address.port, yield* clientContext())
      expect((yield* conn.session).verified).toBe(true)
      const wrong = yield* Ssl.listen(0, {
        hostname: "::1",
        context: yield* serverContext("wrong-host-chain.pem", "wrong-host.key")
      })
      yield* Effect.forkScoped(Ssl.serve(wrong, echo))
      expect(yield* Effect.flip(Ssl.connect("::1%lo", wrong.address.port, yield* clientContext()))).toMatchObject({
        _tag: "VerifyError",
        reason: "HostnameMismatch"
      })
    }).pipe(Effect.provide(TestLayer)))
})

// ---------------------------------------------------------------------------------------------
// Pinned public keys (SslContext.setPinnedPublicKeys): after the usual verification, the server's
// chain must hold a certificate whose SubjectPublicKeyInfo digest is pinned.

// Pins are computed with the `openssl` command, not with effect-ssl.
const leafPin = opensslPin("server.pem")
const intermediatePin = opensslPin("intermediate-ca.pem")
const rootPin = opensslPin("root-ca.pem")
const otherPin = opensslPin("unknown-ca.pem")

const connectPinned = (port: number, pins: ReadonlyArray<string>) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* clientContext()
    yield* SslContext.setPinnedPublicKeys(client, pins)
    const conn = yield* Ssl.connect("localhost", port, client)
    yield* conn.output.write("pinned\n")
    return yield* conn.input.readLine
  }))

describe("a client with pinned public keys", () => {
  it.scopedLive("connects when the leaf, the intermediate or the root is pinned, and refuses a chain with none of them", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), echo)
      const port = listener.address.port
      for (const pin of [leafPin, intermediatePin, rootPin]) {
        expect(yield* connectPinned(port, [otherPin, pin])).toEqual(Option.some("pinned"))
      }
      const error = yield* Effect.flip(connectPinned(port, [otherPin]))
      expect(error).toBeInstanceOf(SslError.VerifyError)
      expect(error).toMatchObject({ reason: "PinMismatch", side: "client" })
      // and no pins: no pinning
      expect(yield* connectPinned(port, [])).toEqual(Option.some("pinned"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("the pin is what session.peerCertificate.spkiSha256 says", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), echo)
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const session = yield* conn.session
      expect(Option.map(session.peerCertificate, (c) => c.spkiSha256)).toEqual(Option.some(leafPin))
    }).pipe(Effect.provide(TestLayer)))

  it.effect("pins that are not base64 SHA-256 digests are refused when set", () =>
    Effect.gen(function*() {
      const client = yield* SslContext.makeClient()
      for (const bad of ["", "sha256/abc", leafPin.slice(1), `${leafPin}x`]) {
        const error = yield* Effect.flip(SslContext.setPinnedPublicKeys(client, [bad]))
        expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "pins" })
      }
    }))
})

describe("certificates met again are parsed once (x509.ts parsedCertificate)", () => {
  it.scopedLive("one client context alternating between two servers judges each by its own certificate", () =>
    Effect.gen(function*() {
      const right = yield* serveOn(yield* serverContext())
      const wrong = yield* serveOn(yield* serverContext("wrong-host-chain.pem", "wrong-host.key"))
      const ctx = yield* clientContext()
      for (let round = 0; round < 3; round++) {
        const session = yield* Effect.scoped(
          Effect.flatMap(Ssl.connect("localhost", right.address.port, ctx), (conn) => conn.session)
        )
        expect(session.verified).toBe(true)
        expect(Option.getOrThrow(session.peerCertificate).fingerprint256).toBe(x509("server.pem").fingerprint256)
        const error = yield* failure(Effect.scoped(Ssl.connect("localhost", wrong.address.port, ctx)))
        expect(error).toMatchObject({ _tag: "VerifyError", reason: "HostnameMismatch", side: "client" })
      }
    }).pipe(Effect.provide(TestLayer)))

  it("answers for the bytes it is given: the same object for the same bytes, never another certificate's", () => {
    const pems = Fs.readdirSync(fixturesDir).filter((name) =>
      name.endsWith(".pem") && !name.includes("chain") && x509Or(name) !== undefined
    )
    // more certificates than are kept, so that some are parsed again
    expect(pems.length).toBeGreaterThan(16)
    const ders = pems.map((name) => new Uint8Array(x509(name).raw))
    for (let round = 0; round < 2; round++) {
      for (const [i, der] of ders.entries()) {
        expect(parsedCertificate(der).fingerprint256).toBe(x509(pems[i]!).fingerprint256)
      }
    }
    // (the first was parsed longest ago: it is parsed again here, from the caller's own array)
    const mine = new Uint8Array(ders[0]!)
    const kept = parsedCertificate(mine)
    expect(parsedCertificate(new Uint8Array(ders[0]!))).toBe(kept)
    // the caller changes its array afterwards: what was kept is still found by the bytes it was
    // parsed from, and the changed bytes are another certificate
    mine[mine.length - 1]! ^= 0xff
    expect(parsedCertificate(ders[0]!)).toBe(kept)
    expect(parsedCertificate(mine)).not.toBe(kept)
    expect(kept.fingerprint256).toBe(x509(pems[0]!).fingerprint256)
  })
})

describe("node:tls and the server's certificate on a client (workarounds/detailedPeerCertificate.ts)", () => {
  const rawClient = (port: number) =>
    Effect.acquireRelease(
      Effect.async<Tls.TLSSocket, Error>((resume) => {
        const socket = Tls.connect({
          host: "127.0.0.1",
          servername: "localhost",
          port,
          ca: fixtureBytes("root-ca.pem")
        })
        socket.once("secureConnect", () => resume(Effect.succeed(socket)))
        socket.once("error", (error) => resume(Effect.fail(error)))
      }),
      (socket) => Effect.sync(() => socket.destroy())
    )

  it.scopedLive("getPeerX509Certificate hands it out once, and then getPeerCertificate has it no more; getPeerCertificate(false) keeps it", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const socket = yield* rawClient(listener.address.port)
      expect(socket.getPeerCertificate(false).subject.CN).toBe("localhost")
      expect(socket.getPeerCertificate(false).subject.CN).toBe("localhost")
      expect(socket.getPeerX509Certificate()?.checkHost("localhost")).toBe("localhost")
      expect(socket.getPeerX509Certificate()).toBeUndefined()
      expect(socket.getPeerCertificate(false).raw).toBeUndefined()
    }).pipe(Effect.provide(TestLayer)))

  // The client answers node:tls's getPeerCertificate(true) with an empty object during its
  // handshake (workarounds/detailedPeerCertificate.ts): whoever holds the socket afterwards (the
  // HTTP client bridge hands it to node:http) must find node:tls's own again.
  it.scopedLive("after a client's handshake its socket's getPeerCertificate is node:tls's own again, chain included", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext())
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const socket = (conn as unknown as { readonly socket: Tls.TLSSocket }).socket
      expect(socket.getPeerCertificate).toBe(Tls.TLSSocket.prototype.getPeerCertificate)
      const detailed = socket.getPeerCertificate(true)
      expect(detailed.subject.CN).toBe("localhost")
      expect(detailed.issuerCertificate?.subject.CN).toBeDefined()
    }).pipe(Effect.provide(TestLayer)))
})
