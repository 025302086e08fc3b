/**
 * A context's identity as OpenSSL judges it: a key belongs to a certificate when OpenSSL says so
 * (Ed25519, EC keys without their public point, either load order), passphrase-protected keys,
 * and PKCS#12 files. Every identity that loads is then served to a verifying client; a listener's
 * identity changes (rotation) apply to its later connections.
 */
import { Ssl, SslContext } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
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

const raw = (name: string) => new Uint8Array(new Crypto.X509Certificate(Fs.readFileSync(fixture(name))).raw)

/** Serves `server` and connects a client that trusts the fixture root only: the session it got. */
const handshake = (server: SslContext.ServerContext) =>
  Effect.gen(function*() {
    const listener = yield* serveOn(server)
    const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
    yield* conn.output.write("ping\n")
    expect(yield* conn.input.readLine).toEqual(Option.some("ping"))
    return yield* conn.session
  })

/** The fields of a context an adapter builds from, to see that a failed load changed nothing. */
const identity = (ctx: SslContext.SslContext) => ({
  chain: ctx.state.chain,
  key: ctx.state.key,
  pkcs12: ctx.state.pkcs12,
  version: ctx.state.version
})

describe("a key belongs to a certificate when OpenSSL says so", () => {
  it.scopedLive("an Ed25519 key that is not the certificate's: setIdentity fails KeyMismatch; the listener keeps serving", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      const before = identity(server)
      const error = yield* Effect.flip(SslContext.setIdentity(server, {
        chain: fixture("server-ed25519-chain.pem"),
        key: fixture("other-ed25519.key"),
        rsa: false
      }))
      expect(error).toMatchObject({ _tag: "CertificateLoadError", reason: "KeyMismatch" })
      expect(error.message).toContain(fixture("server-ed25519-chain.pem"))
      expect(identity(server)).toEqual(before)
      expect((yield* handshake(server)).verified).toBe(true)

      // its own key is accepted, and serves
      yield* SslContext.setIdentity(server, {
        chain: fixture("server-ed25519-chain.pem"),
        key: fixture("server-ed25519.key"),
        rsa: false
      })
      const session = yield* handshake(server)
      expect(session.verified).toBe(true)
      expect(Option.getOrThrow(session.peerCertificate).der).toEqual(raw("server-ed25519.pem"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("an EC key without its public point: another certificate's fails KeyMismatch, its own loads and serves", () =>
    Effect.gen(function*() {
      const server = yield* SslContext.makeServer()
      yield* SslContext.loadCertificateChain(server, fixture("server-ec-chain.pem"))
      const error = yield* Effect.flip(
        SslContext.loadPrivateKey(server, fixture("other-ec.nopublic.key"), { rsa: false })
      )
      expect(error).toMatchObject({
        _tag: "PrivateKeyLoadError",
        reason: "KeyMismatch",
        path: fixture("other-ec.nopublic.key")
      })
      expect(server.state.key).toBeUndefined()
      yield* SslContext.loadPrivateKey(server, fixture("server-ec.nopublic.key"), { rsa: false })
      expect(server.state.key?.type).toBe("ec")
      expect((yield* handshake(server)).verified).toBe(true)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a chain loaded after a key that does not match it drops the key, as the other order refuses it", () =>
    Effect.gen(function*() {
      const pairs: ReadonlyArray<readonly [string, string, string]> = [
        ["other-ed25519.key", "server-ed25519-chain.pem", "server-ed25519.key"],
        ["other-ec.nopublic.key", "server-ec-chain.pem", "server-ec.key"],
        ["mismatch.key", "server-chain.pem", "server.key"]
      ]
      for (const [foreign, chain, own] of pairs) {
        const server = yield* SslContext.makeServer()
        yield* SslContext.loadPrivateKey(server, fixture(foreign), { rsa: false })
        expect(server.state.key).toBeDefined()
        yield* SslContext.loadCertificateChain(server, fixture(chain))
        expect(server.state.key).toBeUndefined()
        // the other order: the key is refused
        const refused = yield* Effect.flip(SslContext.loadPrivateKey(server, fixture(foreign), { rsa: false }))
        expect(refused.reason).toBe("KeyMismatch")
        // a chain that matches keeps its key
        yield* SslContext.loadPrivateKey(server, fixture(own), { rsa: false })
        const key = server.state.key
        yield* SslContext.loadCertificateChain(server, fixture(chain))
        expect(server.state.key).toBe(key)
      }
    }).pipe(Effect.provide(TestLayer)))
})

describe("passphrase-protected keys", () => {
  const encrypted = ["server.encrypted.key", "server.encrypted-legacy.key"] as const

  for (const name of encrypted) {
    it.scopedLive(`${name} loads with its passphrase, as unencrypted PKCS#8, and serves`, () =>
      Effect.gen(function*() {
        const server = yield* SslContext.makeServer()
        yield* SslContext.loadCertificateChain(server, fixture("server-chain.pem"))
        yield* SslContext.loadPrivateKey(server, fixture(name), { passphrase: "secret" })
        expect(server.state.key?.pem.startsWith("-----BEGIN PRIVATE KEY-----\n")).toBe(true)
        expect(server.state.key?.type).toBe("rsa")
        expect((yield* handshake(server)).verified).toBe(true)

        const fromMemory = yield* SslContext.makeServer()
        yield* SslContext.loadPrivateKeyPem(fromMemory, Fs.readFileSync(fixture(name), "utf8"), {
          passphrase: "secret"
        })
        expect(fromMemory.state.key?.pem).toBe(server.state.key?.pem)
      }).pipe(Effect.provide(TestLayer)))
  }

  it.effect("no passphrase: Encrypted; a wrong one: BadPassphrase; each names the path and changes nothing", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      const before = identity(server)
      for (const name of encrypted) {
        const path = fixture(name)
        for (const rsa of [true, false]) {
          expect(yield* Effect.flip(SslContext.loadPrivateKey(server, path, { rsa }))).toMatchObject({
            _tag: "PrivateKeyLoadError",
            reason: "Encrypted",
            path
          })
          const wrong = yield* Effect.flip(SslContext.loadPrivateKey(server, path, { rsa, passphrase: "wrong" }))
          expect(wrong).toMatchObject({ _tag: "PrivateKeyLoadError", reason: "BadPassphrase", path })
          expect(wrong.message).toContain(path)
          expect(wrong.message).toContain("passphrase")
        }
        const memory = yield* Effect.flip(
          SslContext.loadPrivateKeyPem(server, Fs.readFileSync(path, "utf8"), { passphrase: "" })
        )
        expect(memory).toMatchObject({ reason: "BadPassphrase", path: "<memory>" })
        const pair = yield* Effect.flip(
          SslContext.setIdentity(server, { chain: fixture("server-chain.pem"), key: path })
        )
        expect(pair).toMatchObject({ _tag: "PrivateKeyLoadError", reason: "Encrypted", path })
      }
      expect(identity(server)).toEqual(before)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a key encrypted with DES: Unsupported, whatever the passphrase, naming the path and the way out", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      const before = identity(server)
      // [file, DER]
      const files: ReadonlyArray<readonly [string, boolean]> = [
        ["server.encrypted-des.key", false],
        ["server.encrypted-des-legacy.key", false],
        ["server.encrypted-des.key.der", true]
      ]
      for (const [name, asn1] of files) {
        const path = fixture(name)
        for (const passphrase of ["secret", "wrong"]) {
          const error = yield* Effect.flip(SslContext.loadPrivateKey(server, path, { rsa: false, asn1, passphrase }))
          expect(error).toMatchObject({ _tag: "PrivateKeyLoadError", reason: "Unsupported", path })
          expect(error.message).toContain(path)
          expect(error.message).toContain("openssl pkcs8 -topk8 -v2 aes-256-cbc")
        }
      }
      expect(identity(server)).toEqual(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("setIdentity takes the key's passphrase", () =>
    Effect.gen(function*() {
      const server = yield* serverContext("other-server-chain.pem", "other-server.key")
      yield* SslContext.setIdentity(server, {
        chain: fixture("server-chain.pem"),
        key: fixture("server.encrypted.key"),
        passphrase: "secret"
      })
      expect(Option.getOrThrow((yield* handshake(server)).peerCertificate).der).toEqual(raw("server.pem"))
    }).pipe(Effect.provide(TestLayer)))

  it.effect("encrypted PKCS#8 DER (asn1: true) takes a passphrase too", () =>
    Effect.gen(function*() {
      const der = new Uint8Array(
        Crypto.createPrivateKey(Fs.readFileSync(fixture("server.key"))).export({
          type: "pkcs8",
          format: "der",
          cipher: "aes-256-cbc",
          passphrase: "secret"
        })
      )
      const server = yield* SslContext.makeServer()
      yield* SslContext.loadCertificateChain(server, fixture("server.pem"))
      expect((yield* Effect.flip(SslContext.loadPrivateKeyPem(server, der, { asn1: true }))).reason).toBe("Encrypted")
      expect((yield* Effect.flip(SslContext.loadPrivateKeyPem(server, der, { asn1: true, passphrase: "nope" }))).reason)
        .toBe("BadPassphrase")
      yield* SslContext.loadPrivateKeyPem(server, der, { asn1: true, passphrase: "secret" })
      expect(server.state.key?.type).toBe("rsa")
    }).pipe(Effect.provide(TestLayer)))
})

describe("PKCS#12", () => {
  const files: ReadonlyArray<readonly [string, string | undefined]> = [
    ["server.p12", "secret"],
    ["server-3des.p12", "secret"],
    ["server-nopass.p12", undefined]
  ]
  for (const [name, passphrase] of files) {
    it.scopedLive(`${name}: certificate, key and intermediate at once; a client that trusts only the root verifies`, () =>
      Effect.gen(function*() {
        const server = yield* SslContext.makeServer()
        yield* SslContext.loadPkcs12(server, fixture(name), { passphrase })
        expect(server.state.chain.map((c) => c.der)).toEqual([raw("server.pem")])
        expect(server.state.pkcs12?.passphrase).toBe(passphrase)
        const session = yield* handshake(server)
        expect(session.verified).toBe(true)
        expect(Option.getOrThrow(session.peerCertificate).der).toEqual(raw("server.pem"))
      }).pipe(Effect.provide(TestLayer)))
  }

  it.effect("a wrong or missing passphrase, RC2, no key, not PKCS#12: each a typed error naming the file; nothing changes", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      const before = identity(server)
      const cases: ReadonlyArray<readonly [string, string | undefined, string, string]> = [
        ["server.p12", "wrong", "PrivateKeyLoadError", "BadPassphrase"],
        ["server.p12", undefined, "PrivateKeyLoadError", "Encrypted"],
        ["server-legacy.p12", "secret", "PrivateKeyLoadError", "Unsupported"],
        ["server-legacy.p12", "wrong", "PrivateKeyLoadError", "BadPassphrase"],
        ["server-certonly.p12", "secret", "PrivateKeyLoadError", "NoKey"],
        ["server-chain.pem", undefined, "PrivateKeyLoadError", "Malformed"],
        ["empty.pem", undefined, "PrivateKeyLoadError", "Empty"],
        ["no-such.p12", undefined, "PrivateKeyLoadError", "NotFound"]
      ]
      for (const [name, passphrase, tag, reason] of cases) {
        const error = yield* Effect.flip(SslContext.loadPkcs12(server, fixture(name), { passphrase }))
        expect(error).toMatchObject({ _tag: tag, reason, path: fixture(name) })
        expect(error.message).toContain(fixture(name))
      }
      expect(identity(server)).toEqual(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a key or chain loaded afterwards replaces the file's identity; a sealed context refuses it", () =>
    Effect.gen(function*() {
      const server = yield* SslContext.makeServer()
      yield* SslContext.loadPkcs12(server, fixture("server.p12"), { passphrase: "secret" })
      // the key is checked against the file's certificate
      expect((yield* Effect.flip(SslContext.loadPrivateKey(server, fixture("mismatch.key")))).reason).toBe(
        "KeyMismatch"
      )
      expect(server.state.pkcs12).toBeDefined()
      yield* SslContext.loadCertificateChain(server, fixture("server-chain.pem"))
      expect(server.state.pkcs12).toBeUndefined()
      expect(server.state.key).toBeUndefined()
      yield* SslContext.loadPrivateKey(server, fixture("server.key"))
      expect((yield* handshake(server)).verified).toBe(true)

      yield* SslContext.loadPkcs12(server, fixture("server.p12"), { passphrase: "secret" })
      yield* SslContext.setIdentity(server, {
        chain: fixture("other-server-chain.pem"),
        key: fixture("other-server.key")
      })
      expect(server.state.pkcs12).toBeUndefined()
      expect(Option.getOrThrow((yield* handshake(server)).peerCertificate).der).toEqual(raw("other-server.pem"))

      yield* SslContext.seal(server)
      const sealed = yield* Effect.flip(SslContext.loadPkcs12(server, fixture("server.p12"), { passphrase: "secret" }))
      expect(sealed).toMatchObject({ _tag: "PrivateKeyLoadError", reason: "Sealed" })
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
