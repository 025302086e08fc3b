import { NodeSsl } from "@effect-ssl/node"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { SystemError, type SystemErrorReason } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { afterAll, describe, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Pki from "../src/Pki.js"
import type * as Protocol from "../src/Protocol.js"
import * as SslContext from "../src/SslContext.js"
import type { CertificateLoadError, PrivateKeyLoadError } from "../src/SslError.js"
import { fixture, fixturesDir } from "./helpers/Fixtures.js"

const text = (name: string): string => fs.readFileSync(fixture(name), "utf8")
const bytes = (name: string): Uint8Array => new Uint8Array(fs.readFileSync(fixture(name)))

const x509 = (name: string) => new crypto.X509Certificate(fs.readFileSync(fixture(name)))
const spki = (key: crypto.KeyObject): string => key.export({ type: "spki", format: "der" }).toString("hex")
/** The public key of a certificate, as node:crypto reads it: the cross-check for our parser. */
const certificatePublicKey = (name: string): string => spki(x509(name).publicKey)
/** The public key of a loaded key, proving at the same time that node:crypto accepts its PEM. */
const loadedPublicKey = (key: SslContext.PrivateKey | undefined): string => {
  expect(key).toBeDefined()
  return spki(crypto.createPublicKey(crypto.createPrivateKey(key!.pem)))
}
const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b))

const scratch = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-ssl-core-"))
afterAll(() => {
  fs.chmodSync(nodePath.join(scratch, "unreadable.pem"), 0o600)
  fs.rmSync(scratch, { recursive: true, force: true })
})

const server = (protocol?: Protocol.Protocol) => Effect.orDie(SslContext.makeServer(protocol))
const client = (protocol?: Protocol.Protocol) => Effect.orDie(SslContext.makeClient(protocol))

/** A server context holding server-chain.pem and server.key. */
const serverWithIdentity = Effect.gen(function*() {
  const ctx = yield* server()
  yield* SslContext.loadCertificateChain(ctx, fixture("server-chain.pem"))
  yield* SslContext.loadPrivateKey(ctx, fixture("server.key"))
  return ctx
})

const snapshot = (ctx: SslContext.SslContext) => ({ ...ctx.state })

/** The real file system with `readFile` (or `stat`) failing as the platform reports `reason`. */
const failingFileSystem = (method: "stat" | "readFile", reason: SystemErrorReason) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (real): FileSystem.FileSystem => ({
      ...real,
      [method]: (path: string) =>
        Effect.fail(new SystemError({ reason, module: "FileSystem", method, pathOrDescriptor: path }))
    }))
  ).pipe(Layer.provide(NodeFileSystem.layer))

// Root (which these tests often run as) reads any file whatever its mode, so a chmod 000 file
// proves nothing there. procfs write-only sysctl files refuse reads even to root: use one when
// chmod cannot make a file unreadable. If neither works, the mapping test below still covers it.
const unreadablePath: string | undefined = (() => {
  const file = nodePath.join(scratch, "unreadable.pem")
  fs.writeFileSync(file, text("server.pem"))
  fs.chmodSync(file, 0o000)
  for (const candidate of [file, "/proc/sys/vm/compact_memory", "/proc/sys/vm/drop_caches"]) {
    try {
      fs.readFileSync(candidate)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EACCES") return candidate
    }
  }
  return undefined
})()

/** Files, and certificates and keys read by OpenSSL (node:crypto): what NodeSsl.layer provides. */
const Platform = Layer.merge(NodeContext.layer, NodeSsl.layer)

layer(Platform)("SslContext", (it) => {
  describe("makeClient / makeServer", () => {
    const expected: ReadonlyArray<[Protocol.Protocol, Protocol.TlsVersion, Protocol.TlsVersion]> = [
      ["auto", "TLSv1.2", "TLSv1.3"],
      ["secure", "TLSv1.2", "TLSv1.3"],
      ["sslv2-or-v3", "TLSv1.2", "TLSv1.3"],
      ["tls", "TLSv1", "TLSv1"],
      ["tls1", "TLSv1", "TLSv1"],
      ["tls1.1", "TLSv1.1", "TLSv1.1"],
      ["tls1.2", "TLSv1.2", "TLSv1.2"],
      ["tls1.3", "TLSv1.3", "TLSv1.3"]
    ]
    for (const [protocol, min, max] of expected) {
      it.effect(`"${protocol}" makes client and server contexts for ${min}..${max}`, () =>
        Effect.gen(function*() {
          const c = yield* SslContext.makeClient(protocol)
          const s = yield* SslContext.makeServer(protocol)
          expect(c.kind).toBe("client")
          expect(s.kind).toBe("server")
          for (const ctx of [c, s]) {
            expect(ctx.state.protocol.minVersion).toBe(min)
            expect(ctx.state.protocol.maxVersion).toBe(max)
          }
        }))
    }

    it.effect("defaults to \"auto\"", () =>
      Effect.gen(function*() {
        const c = yield* SslContext.makeClient()
        const s = yield* SslContext.makeServer()
        expect([c.state.protocol.minVersion, c.state.protocol.maxVersion]).toEqual(["TLSv1.2", "TLSv1.3"])
        expect([s.state.protocol.minVersion, s.state.protocol.maxVersion]).toEqual(["TLSv1.2", "TLSv1.3"])
      }))

    for (const protocol of ["sslv2", "sslv3"] as const) {
      it.effect(`"${protocol}" fails with UnsupportedProtocolError naming it`, () =>
        Effect.gen(function*() {
          const failures = [
            yield* Effect.flip(SslContext.makeClient(protocol)),
            yield* Effect.flip(SslContext.makeServer(protocol))
          ]
          for (const error of failures) {
            expect(error._tag).toBe("UnsupportedProtocolError")
            if (error._tag !== "UnsupportedProtocolError") return
            expect(error.protocol).toBe(protocol)
            expect(error.message).toContain(protocol)
            expect(error.reason).not.toBe("")
          }
        }))
    }

    it.effect("an unknown protocol name fails with InvalidArgumentError", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(SslContext.makeClient("tls9" as Protocol.Protocol))
        expect(error._tag).toBe("InvalidArgumentError")
        expect(error.message).toContain("tls9")
        const serverError = yield* Effect.flip(SslContext.makeServer("" as Protocol.Protocol))
        expect(serverError._tag).toBe("InvalidArgumentError")
      }))

    it.effect("isClientContext / isServerContext tell the kinds apart", () =>
      Effect.gen(function*() {
        const c = yield* client()
        const s = yield* server()
        expect(SslContext.isClientContext(c)).toBe(true)
        expect(SslContext.isServerContext(c)).toBe(false)
        expect(SslContext.isServerContext(s)).toBe(true)
        expect(SslContext.isClientContext(s)).toBe(false)
        for (const other of [null, undefined, {}, { kind: "client" }, { context: s }, "client"]) {
          expect(SslContext.isClientContext(other)).toBe(false)
          expect(SslContext.isServerContext(other)).toBe(false)
        }
      }))

    it.effect("a client verifies the server by default; a server asks for no client certificate", () =>
      Effect.gen(function*() {
        const c = yield* client()
        const s = yield* server()
        expect(c.state.verify).toBe(true)
        expect(c.state.useDefaultTrust).toBe(true)
        expect(s.state.verify).toBe(false)
      }))

    it.effect("setVerify toggles verification and counts as a change", () =>
      Effect.gen(function*() {
        const c = yield* client()
        const s = yield* server()
        const before = c.state.version
        yield* SslContext.setVerify(c, false)
        expect(c.state.verify).toBe(false)
        expect(c.state.version).toBeGreaterThan(before)
        yield* SslContext.setVerify(c, true)
        expect(c.state.verify).toBe(true)
        yield* SslContext.setVerify(s, true)
        expect(s.state.verify).toBe(true)
        yield* SslContext.setVerify({ context: s }, false)
        expect(s.state.verify).toBe(false)
      }))
  })

  describe("loadCertificateChain", () => {
    it.effect("a chain file holds the leaf, then its intermediate", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.loadCertificateChain(ctx, fixture("server-chain.pem"))
        const chain = ctx.state.chain
        expect(chain).toHaveLength(2)
        expect(bytesEqual(chain[0]!.der, x509("server.pem").raw)).toBe(true)
        expect(bytesEqual(chain[1]!.der, x509("intermediate-ca.pem").raw)).toBe(true)
        // Each entry is that certificate alone, as PEM node:crypto reads.
        expect(new crypto.X509Certificate(chain[0]!.pem).fingerprint256).toBe(x509("server.pem").fingerprint256)
        expect(new crypto.X509Certificate(chain[1]!.pem).fingerprint256).toBe(
          x509("intermediate-ca.pem").fingerprint256
        )
        expect(chain[0]!.pem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("loading again replaces the chain", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.loadCertificateChain(ctx, fixture("server-chain.pem"))
        yield* SslContext.loadCertificateChain(ctx, fixture("other-server-chain.pem"))
        expect(ctx.state.chain).toHaveLength(2)
        expect(bytesEqual(ctx.state.chain[0]!.der, x509("other-server.pem").raw)).toBe(true)
        yield* SslContext.loadCertificateChain(ctx, fixture("server.pem"))
        expect(ctx.state.chain).toHaveLength(1)
        expect(bytesEqual(ctx.state.chain[0]!.der, x509("server.pem").raw)).toBe(true)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("works on a client context too (a client certificate)", () =>
      Effect.gen(function*() {
        const ctx = yield* client()
        yield* SslContext.loadCertificateChain(ctx, fixture("client-chain.pem"))
        yield* SslContext.loadPrivateKey(ctx, fixture("client.key"))
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("client.pem"))
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a chain whose leaf does not match the loaded key drops that key", () =>
      Effect.gen(function*() {
        const ctx = yield* serverWithIdentity
        yield* SslContext.loadCertificateChain(ctx, fixture("other-server-chain.pem"))
        expect(ctx.state.key).toBeUndefined()
        expect(bytesEqual(ctx.state.chain[0]!.der, x509("other-server.pem").raw)).toBe(true)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a chain whose leaf matches the loaded key keeps it", () =>
      Effect.gen(function*() {
        const ctx = yield* serverWithIdentity
        const key = ctx.state.key
        yield* SslContext.loadCertificateChain(ctx, fixture("server.pem"))
        expect(ctx.state.key).toBe(key)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("rotation: load the new chain, then its key", () =>
      Effect.gen(function*() {
        const ctx = yield* serverWithIdentity
        yield* SslContext.loadCertificateChain(ctx, fixture("other-server-chain.pem"))
        yield* SslContext.loadPrivateKey(ctx, fixture("other-server.key"))
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("other-server.pem"))
        expect(bytesEqual(ctx.state.chain[0]!.der, x509("other-server.pem").raw)).toBe(true)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("text around the PEM blocks (openssl -text output, comments) is skipped", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        const noisy = `Certificate:\n    Subject: CN=localhost\n${text("server.pem")}\n# the CA\r\n${
          text("intermediate-ca.pem").replace(/\n/g, "\r\n")
        }trailing words\n`
        yield* SslContext.loadCertificateChainPem(ctx, noisy)
        expect(ctx.state.chain).toHaveLength(2)
        expect(bytesEqual(ctx.state.chain[1]!.der, x509("intermediate-ca.pem").raw)).toBe(true)
      }))

    it.effect("a single DER certificate (bytes) loads", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.loadCertificateChainPem(ctx, new Uint8Array(x509("server.pem").raw))
        expect(ctx.state.chain).toHaveLength(1)
        expect(ctx.state.chain[0]!.pem).toBe(text("server.pem"))
      }))

    it.effect("a TRUSTED CERTIFICATE block (OpenSSL's certificate plus trust settings) loads as the certificate", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        const raw = x509("root-ca.pem").raw
        const withAux = Buffer.concat([raw, Buffer.from([0x30, 0x00])]).toString("base64")
        const trusted = `-----BEGIN TRUSTED CERTIFICATE-----\n${
          withAux.match(/.{1,64}/g)!.join("\n")
        }\n-----END TRUSTED CERTIFICATE-----\n`
        yield* SslContext.loadVerifyRootCertificatesPem(ctx, trusted)
        expect(ctx.state.roots).toHaveLength(1)
        expect(bytesEqual(ctx.state.roots[0]!.der, raw)).toBe(true)
        expect(ctx.state.roots[0]!.pem).toBe(text("root-ca.pem"))
      }))
  })

  describe("loadPrivateKey", () => {
    // Whatever form a key is read from, the adapter gets unencrypted PKCS#8 PEM.
    const pkcs8Pem = "-----BEGIN PRIVATE KEY-----\n"
    const rsaEncodings: ReadonlyArray<[string, { asn1?: boolean }]> = [
      ["server.key", {}],
      ["server.pkcs1.key", {}],
      ["server.key.der", { asn1: true }],
      ["server.pkcs1.key.der", { asn1: true }]
    ]
    for (const [file, options] of rsaEncodings) {
      it.effect(`${file} loads as PKCS#8 PEM that node:crypto accepts and that matches server.pem`, () =>
        Effect.gen(function*() {
          const ctx = yield* server()
          yield* SslContext.loadCertificateChain(ctx, fixture("server.pem"))
          yield* SslContext.loadPrivateKey(ctx, fixture(file), options)
          expect(ctx.state.key?.type).toBe("rsa")
          expect(ctx.state.key?.pem.startsWith(pkcs8Pem)).toBe(true)
          expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("server.pem"))
        }).pipe(Effect.provide(NodeContext.layer)))
    }

    for (const file of ["server-ec.key", "server-ec.sec1.key"]) {
      it.effect(`${file} (EC) loads with rsa: false and matches server-ec.pem`, () =>
        Effect.gen(function*() {
          const ctx = yield* server()
          yield* SslContext.loadCertificateChain(ctx, fixture("server-ec-chain.pem"))
          yield* SslContext.loadPrivateKey(ctx, fixture(file), { rsa: false })
          expect(ctx.state.key?.type).toBe("ec")
          expect(ctx.state.key?.pem.startsWith(pkcs8Pem)).toBe(true)
          expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("server-ec.pem"))
        }).pipe(Effect.provide(NodeContext.layer)))
    }

    it.effect("SEC1 DER loads with asn1: true", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.loadCertificateChain(ctx, fixture("server-ec.pem"))
        const der = crypto.createPrivateKey(text("server-ec.key")).export({ type: "sec1", format: "der" })
        yield* SslContext.loadPrivateKeyPem(ctx, new Uint8Array(der), { rsa: false, asn1: true })
        expect(ctx.state.key?.pem.startsWith(pkcs8Pem)).toBe(true)
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("server-ec.pem"))
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("an EC key matches by its public point, whether written compressed or not", () =>
      Effect.gen(function*() {
        // OpenSSL's P-256 SEC1: 30 77 | version | 04 20 scalar | a0 0a curve | a1 44 03 42 00 04 x y
        const der = crypto.createPrivateKey(text("server-ec.key")).export({ type: "sec1", format: "der" })
        expect([der[0], der[1], der[der.length - 65]]).toEqual([0x30, 0x77, 0x04])
        const x = der.subarray(der.length - 64, der.length - 32)
        const y = der.subarray(der.length - 32)
        const head = der.subarray(2, der.length - 70)
        const sec1 = (publicKey: ReadonlyArray<number> | Buffer) => {
          const bitString = Buffer.from([0x03, publicKey.length + 1, 0x00, ...publicKey])
          const body = Buffer.concat([head, Buffer.from([0xa1, bitString.length]), bitString])
          return new Uint8Array(Buffer.concat([Buffer.from([0x30, body.length]), body]))
        }
        const ctx = yield* server()
        yield* SslContext.loadCertificateChain(ctx, fixture("server-ec.pem"))

        const compressed = sec1([0x02 | (y[31]! & 1), ...x])
        yield* SslContext.loadPrivateKeyPem(ctx, compressed, { rsa: false, asn1: true })
        // node:crypto keeps the compressed form when exporting, so compare the points themselves.
        expect(crypto.createPublicKey(crypto.createPrivateKey(ctx.state.key!.pem)).export({ format: "jwk" }))
          .toEqual(x509("server-ec.pem").publicKey.export({ format: "jwk" }))

        // The mirror point (x, p - y) is another public key with the same x: it must not match.
        const p256 = 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n
        const mirrorY = Buffer.from((p256 - BigInt(`0x${y.toString("hex")}`)).toString(16).padStart(64, "0"), "hex")
        const mirror = sec1(Buffer.concat([Buffer.from([0x04]), x, mirrorY]))
        const error = yield* Effect.flip(SslContext.loadPrivateKeyPem(ctx, mirror, { rsa: false, asn1: true }))
        expect(error.reason).toBe("KeyMismatch")
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("rsa: true (the default) skips the leading EC key and takes the RSA one", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.loadPrivateKey(ctx, fixture("server.key-and-ec.pem"))
        expect(ctx.state.key?.type).toBe("rsa")
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("server.pem"))
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("rsa: false takes the first key, whatever its type", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.loadPrivateKey(ctx, fixture("server.key-and-ec.pem"), { rsa: false })
        expect(ctx.state.key?.type).toBe("ec")
        const firstBlock = text("server.key-and-ec.pem").split("-----END EC PRIVATE KEY-----")[0]! +
          "-----END EC PRIVATE KEY-----\n"
        expect(loadedPublicKey(ctx.state.key)).toBe(spki(crypto.createPublicKey(firstBlock)))
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("rsa: true with only non-RSA keys fails with NoRsaKey", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        const pemError = yield* Effect.flip(SslContext.loadPrivateKey(ctx, fixture("server-ec.sec1.key")))
        expect(pemError.reason).toBe("NoRsaKey")
        const der = crypto.createPrivateKey(text("server-ec.key")).export({ type: "pkcs8", format: "der" })
        const derError = yield* Effect.flip(SslContext.loadPrivateKeyPem(ctx, new Uint8Array(der), { asn1: true }))
        expect(derError.reason).toBe("NoRsaKey")
        expect(ctx.state.key).toBeUndefined()
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("Ed25519 and RSA-PSS keys load with rsa: false as node:crypto reads them", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        const ed = crypto.generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" })
        yield* SslContext.loadPrivateKeyPem(ctx, ed, { rsa: false })
        expect(ctx.state.key?.type).toBe("ed25519")
        expect(ctx.state.key?.pem).toBe(ed)
        const pss = crypto.generateKeyPairSync("rsa-pss", { modulusLength: 1024 }).privateKey
        yield* SslContext.loadPrivateKeyPem(ctx, pss.export({ type: "pkcs8", format: "pem" }))
        expect(ctx.state.key?.type).toBe("rsa-pss")
        expect(loadedPublicKey(ctx.state.key)).toBe(spki(crypto.createPublicKey(pss)))
      }))

    it.effect("a key that does not match the loaded certificate fails with KeyMismatch and keeps the old key", () =>
      Effect.gen(function*() {
        const ctx = yield* serverWithIdentity
        const before = snapshot(ctx)
        const error = yield* Effect.flip(SslContext.loadPrivateKey(ctx, fixture("mismatch.key")))
        expect(error._tag).toBe("PrivateKeyLoadError")
        expect(error.reason).toBe("KeyMismatch")
        expect(error.message).toContain(fixture("mismatch.key"))
        expect(ctx.state.key).toBe(before.key)
        expect(ctx.state.version).toBe(before.version)
        // Another key type is no match either.
        const ecError = yield* Effect.flip(SslContext.loadPrivateKey(ctx, fixture("server-ec.key"), { rsa: false }))
        expect(ecError.reason).toBe("KeyMismatch")
        expect(ctx.state.key).toBe(before.key)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("an EC key for another EC certificate fails with KeyMismatch", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.loadCertificateChain(ctx, fixture("server-ec.pem"))
        const error = yield* Effect.flip(
          SslContext.loadPrivateKey(ctx, fixture("server.key-and-ec.pem"), { rsa: false })
        )
        expect(error.reason).toBe("KeyMismatch")
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a key loaded before any certificate is accepted, and the matching chain keeps it", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.loadPrivateKey(ctx, fixture("server.pkcs1.key"))
        yield* SslContext.loadCertificateChain(ctx, fixture("server-chain.pem"))
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("server.pem"))
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("asn1 must agree with the encoding: DER without it and PEM with it are Malformed", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        const der = yield* Effect.flip(SslContext.loadPrivateKey(ctx, fixture("server.key.der")))
        expect(der.reason).toBe("Malformed")
        expect(der.message).toContain("asn1")
        const pem = yield* Effect.flip(SslContext.loadPrivateKey(ctx, fixture("server.key"), { asn1: true }))
        expect(pem.reason).toBe("Malformed")
        const cert = yield* Effect.flip(
          SslContext.loadPrivateKeyPem(ctx, new Uint8Array(x509("server.pem").raw), { asn1: true })
        )
        expect(cert.reason).toBe("NoKey")
      }).pipe(Effect.provide(NodeContext.layer)))
  })

  describe("setIdentity", () => {
    it.effect("swaps chain and key together, from paths", () =>
      Effect.gen(function*() {
        const ctx = yield* serverWithIdentity
        const before = ctx.state.version
        yield* SslContext.setIdentity(ctx, {
          chain: fixture("other-server-chain.pem"),
          key: fixture("other-server.key")
        })
        expect(ctx.state.chain).toHaveLength(2)
        expect(bytesEqual(ctx.state.chain[0]!.der, x509("other-server.pem").raw)).toBe(true)
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("other-server.pem"))
        // One change, not two: no adapter can see the chain without its key.
        expect(ctx.state.version).toBe(before + 1)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("swaps chain and key together, from PEM text", () =>
      Effect.gen(function*() {
        const ctx = yield* serverWithIdentity
        yield* SslContext.setIdentity(ctx, { chain: text("other-server-chain.pem"), key: text("other-server.key") })
        expect(bytesEqual(ctx.state.chain[0]!.der, x509("other-server.pem").raw)).toBe(true)
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("other-server.pem"))
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("swaps chain and key together, from bytes (DER key with asn1)", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.setIdentity(ctx, {
          chain: bytes("server-chain.pem"),
          key: bytes("server.pkcs1.key.der"),
          asn1: true
        })
        expect(ctx.state.chain).toHaveLength(2)
        expect(ctx.state.key?.pem.startsWith("-----BEGIN PRIVATE KEY-----")).toBe(true)
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("server.pem"))
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a mismatched pair fails with KeyMismatch and changes nothing", () =>
      Effect.gen(function*() {
        const ctx = yield* serverWithIdentity
        const before = snapshot(ctx)
        const error = yield* Effect.flip(
          SslContext.setIdentity(ctx, { chain: fixture("other-server-chain.pem"), key: fixture("server.key") })
        )
        expect(error._tag).toBe("CertificateLoadError")
        expect(error.reason).toBe("KeyMismatch")
        expect(error.message).toContain(fixture("other-server-chain.pem"))
        expect(snapshot(ctx)).toEqual(before)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a pair with an unreadable half fails with that half's error and changes nothing", () =>
      Effect.gen(function*() {
        const ctx = yield* serverWithIdentity
        const before = snapshot(ctx)
        const error = yield* Effect.flip(
          SslContext.setIdentity(ctx, { chain: fixture("other-server-chain.pem"), key: fixture("nope.key") })
        )
        expect(error._tag).toBe("PrivateKeyLoadError")
        expect(error.reason).toBe("NotFound")
        expect(snapshot(ctx)).toEqual(before)
      }).pipe(Effect.provide(NodeContext.layer)))
  })

  describe("load failures: each its own reason, with the path in the message", () => {
    const certificateFailure = (path: string) =>
      Effect.flatMap(server(), (ctx) => Effect.flip(SslContext.loadCertificateChain(ctx, path)))
    const keyFailure = (path: string, options?: { rsa?: boolean; asn1?: boolean }) =>
      Effect.flatMap(server(), (ctx) => Effect.flip(SslContext.loadPrivateKey(ctx, path, options)))
    const expectReason = (
      error: CertificateLoadError | PrivateKeyLoadError,
      tag: string,
      reason: string,
      path: string
    ) => {
      expect(error._tag).toBe(tag)
      expect(error.reason).toBe(reason)
      expect(error.path).toBe(path)
      expect(error.message).toContain(path)
    }

    it.effect("missing file: NotFound", () =>
      Effect.gen(function*() {
        const path = fixture("does-not-exist.pem")
        expectReason(yield* certificateFailure(path), "CertificateLoadError", "NotFound", path)
        expectReason(yield* keyFailure(path), "PrivateKeyLoadError", "NotFound", path)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a directory: IsDirectory", () =>
      Effect.gen(function*() {
        const path = fixturesDir.replace(/\/$/, "")
        expectReason(yield* certificateFailure(path), "CertificateLoadError", "IsDirectory", path)
        expectReason(yield* keyFailure(path), "PrivateKeyLoadError", "IsDirectory", path)
      }).pipe(Effect.provide(NodeContext.layer)))

    // Linux always has the write-only sysctl file, so this never depends on who runs the tests.
    it.effect("an unreadable file: PermissionDenied", () =>
      Effect.gen(function*() {
        const path = unreadablePath ?? "/proc/sys/vm/compact_memory"
        expectReason(yield* certificateFailure(path), "CertificateLoadError", "PermissionDenied", path)
        expectReason(yield* keyFailure(path), "PrivateKeyLoadError", "PermissionDenied", path)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("the platform's PermissionDenied maps to PermissionDenied, anything else to ReadFailed", () =>
      Effect.gen(function*() {
        const path = fixture("server.pem")
        const denied = yield* certificateFailure(path).pipe(
          Effect.provide(failingFileSystem("readFile", "PermissionDenied"))
        )
        expectReason(denied, "CertificateLoadError", "PermissionDenied", path)
        const deniedStat = yield* keyFailure(fixture("server.key")).pipe(
          Effect.provide(failingFileSystem("stat", "PermissionDenied"))
        )
        expectReason(deniedStat, "PrivateKeyLoadError", "PermissionDenied", fixture("server.key"))
        const other = yield* certificateFailure(path).pipe(Effect.provide(failingFileSystem("readFile", "Unknown")))
        expectReason(other, "CertificateLoadError", "ReadFailed", path)
        const otherKey = yield* keyFailure(fixture("server.key")).pipe(
          Effect.provide(failingFileSystem("readFile", "BadResource"))
        )
        expectReason(otherKey, "PrivateKeyLoadError", "ReadFailed", fixture("server.key"))
      }))

    it.effect("an empty or whitespace-only file: Empty", () =>
      Effect.gen(function*() {
        const path = fixture("empty.pem")
        expectReason(yield* certificateFailure(path), "CertificateLoadError", "Empty", path)
        expectReason(yield* keyFailure(path), "PrivateKeyLoadError", "Empty", path)
        const blank = nodePath.join(scratch, "blank.pem")
        fs.writeFileSync(blank, " \n\t\r\n")
        expectReason(yield* certificateFailure(blank), "CertificateLoadError", "Empty", blank)
        expectReason(yield* keyFailure(blank, { asn1: true }), "PrivateKeyLoadError", "Empty", blank)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("garbage: Malformed", () =>
      Effect.gen(function*() {
        const path = fixture("garbage.pem")
        expectReason(yield* certificateFailure(path), "CertificateLoadError", "Malformed", path)
        expectReason(yield* keyFailure(path), "PrivateKeyLoadError", "Malformed", path)
        expectReason(yield* keyFailure(path, { asn1: true }), "PrivateKeyLoadError", "Malformed", path)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a key file where certificates are expected: NoCertificate", () =>
      Effect.gen(function*() {
        for (const name of ["server.key", "server-ec.sec1.key", "server.encrypted.key"]) {
          const path = fixture(name)
          expectReason(yield* certificateFailure(path), "CertificateLoadError", "NoCertificate", path)
        }
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a certificate file where a key is expected: NoKey", () =>
      Effect.gen(function*() {
        for (const name of ["server.pem", "server-chain.pem"]) {
          const path = fixture(name)
          expectReason(yield* keyFailure(path), "PrivateKeyLoadError", "NoKey", path)
          expectReason(yield* keyFailure(path, { rsa: false }), "PrivateKeyLoadError", "NoKey", path)
        }
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("truncated PEM: Malformed", () =>
      Effect.gen(function*() {
        const path = fixture("truncated.pem")
        expectReason(yield* certificateFailure(path), "CertificateLoadError", "Malformed", path)
        // A block with its END line but half its body is as broken.
        const pem = text("server.pem")
        const lines = pem.trim().split("\n")
        const halfBody = [lines[0], ...lines.slice(1, 10), lines[lines.length - 1]].join("\n")
        const ctx = yield* server()
        const error = yield* Effect.flip(SslContext.loadCertificateChainPem(ctx, halfBody))
        expect(error.reason).toBe("Malformed")
        expect(error.path).toBe("<memory>")
        const keyLines = text("server.key").trim().split("\n")
        const halfKey = [keyLines[0], ...keyLines.slice(1, 10), keyLines[keyLines.length - 1]].join("\n")
        expect((yield* Effect.flip(SslContext.loadPrivateKeyPem(ctx, halfKey))).reason).toBe("Malformed")
        expect((yield* Effect.flip(SslContext.loadPrivateKeyPem(ctx, keyLines.slice(0, 10).join("\n")))).reason)
          .toBe("Malformed")
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a block without its END line is Malformed even when its body is complete", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        const noEnd = text("server.pem").replace("-----END CERTIFICATE-----", "")
        const error = yield* Effect.flip(SslContext.loadCertificateChainPem(ctx, noEnd))
        expect(error.reason).toBe("Malformed")
        const keyNoEnd = text("server.key").replace("-----END PRIVATE KEY-----", "")
        expect((yield* Effect.flip(SslContext.loadPrivateKeyPem(ctx, keyNoEnd))).reason).toBe("Malformed")
      }))

    it.effect("a chain with one good and one broken certificate loads nothing", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        const broken = text("server.pem") + text("intermediate-ca.pem").replace(/[A-Za-z]{8}\n/, "!!!!!!!!\n")
        const error = yield* Effect.flip(SslContext.loadCertificateChainPem(ctx, broken))
        expect(error.reason).toBe("Malformed")
        expect(error.message).toContain("block 2")
        expect(ctx.state.chain).toHaveLength(0)
      }))

    it.effect("encrypted keys, PKCS#8 and legacy: Encrypted", () =>
      Effect.gen(function*() {
        for (const name of ["server.encrypted.key", "server.encrypted-legacy.key"]) {
          const path = fixture(name)
          expectReason(yield* keyFailure(path), "PrivateKeyLoadError", "Encrypted", path)
          expectReason(yield* keyFailure(path, { rsa: false }), "PrivateKeyLoadError", "Encrypted", path)
        }
        // EncryptedPrivateKeyInfo as DER.
        const body = text("server.encrypted.key").replace(/-----[^-]+-----/g, "").replace(/\s+/g, "")
        const ctx = yield* server()
        const error = yield* Effect.flip(
          SslContext.loadPrivateKeyPem(ctx, new Uint8Array(Buffer.from(body, "base64")), { asn1: true })
        )
        expect(error.reason).toBe("Encrypted")
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a failed load changes nothing", () =>
      Effect.gen(function*() {
        const ctx = yield* serverWithIdentity
        yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
        const before = snapshot(ctx)
        yield* Effect.flip(SslContext.loadCertificateChain(ctx, fixture("garbage.pem")))
        yield* Effect.flip(SslContext.loadPrivateKey(ctx, fixture("server.encrypted.key")))
        yield* Effect.flip(SslContext.loadVerifyRootCertificates(ctx, fixture("server.key")))
        yield* Effect.flip(SslContext.loadSuggestedCertificateAuthorities(ctx, fixture("empty.pem")))
        expect(snapshot(ctx)).toEqual(before)
      }).pipe(Effect.provide(NodeContext.layer)))
  })

  describe("roots and suggested CAs", () => {
    it.effect("roots accumulate across calls", () =>
      Effect.gen(function*() {
        const ctx = yield* client()
        yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
        yield* SslContext.loadVerifyRootCertificates(ctx, fixture("intermediate-ca.pem"))
        expect(ctx.state.roots).toHaveLength(2)
        expect(bytesEqual(ctx.state.roots[0]!.der, x509("root-ca.pem").raw)).toBe(true)
        expect(bytesEqual(ctx.state.roots[1]!.der, x509("intermediate-ca.pem").raw)).toBe(true)
        expect(ctx.state.chain).toHaveLength(0)
        // Loading roots does not switch off the platform's default trust.
        expect(ctx.state.useDefaultTrust).toBe(true)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("suggested CAs are kept apart from trusted roots", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        yield* SslContext.loadSuggestedCertificateAuthorities(ctx, fixture("root-ca.pem"))
        expect(ctx.state.suggestedCas).toHaveLength(1)
        expect(ctx.state.roots).toHaveLength(0)
        yield* SslContext.loadVerifyRootCertificates(ctx, fixture("intermediate-ca.pem"))
        yield* SslContext.loadSuggestedCertificateAuthorities(ctx, fixture("intermediate-ca.pem"))
        expect(ctx.state.suggestedCas).toHaveLength(2)
        expect(ctx.state.roots).toHaveLength(1)
        expect(bytesEqual(ctx.state.roots[0]!.der, x509("intermediate-ca.pem").raw)).toBe(true)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.effect("a file of several certificates adds them all", () =>
      Effect.gen(function*() {
        const ctx = yield* client()
        yield* SslContext.loadVerifyRootCertificates(ctx, fixture("server-chain.pem"))
        expect(ctx.state.roots).toHaveLength(2)
      }).pipe(Effect.provide(NodeContext.layer)))
  })

  describe("a runtime without a crypto library", () => {
    it.effect("every certificate and key fails to load with Unavailable, naming the path and why", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        const chain = yield* Effect.flip(SslContext.loadCertificateChain(ctx, fixture("server-chain.pem")))
        expect(chain).toMatchObject({
          _tag: "CertificateLoadError",
          reason: "Unavailable",
          path: fixture("server-chain.pem")
        })
        expect(chain.message).toContain("no crypto")
        const key = yield* Effect.flip(SslContext.loadPrivateKeyPem(ctx, text("server.key")))
        expect(key).toMatchObject({ _tag: "PrivateKeyLoadError", reason: "Unavailable", path: "<memory>" })
        expect(ctx.state.chain).toHaveLength(0)
      }).pipe(Effect.provide(Pki.layerUnavailable("node:crypto did not load"))))
  })

  describe("in-memory variants", () => {
    it.effect("behave as the path ones, with <memory> as the path in errors", () =>
      Effect.gen(function*() {
        const fromPaths = yield* server()
        yield* SslContext.loadCertificateChain(fromPaths, fixture("server-chain.pem"))
        yield* SslContext.loadPrivateKey(fromPaths, fixture("server.key"))
        yield* SslContext.loadVerifyRootCertificates(fromPaths, fixture("root-ca.pem"))
        yield* SslContext.loadSuggestedCertificateAuthorities(fromPaths, fixture("intermediate-ca.pem"))

        const fromText = yield* server()
        yield* SslContext.loadCertificateChainPem(fromText, text("server-chain.pem"))
        yield* SslContext.loadPrivateKeyPem(fromText, text("server.key"))
        yield* SslContext.loadVerifyRootCertificatesPem(fromText, text("root-ca.pem"))
        yield* SslContext.loadSuggestedCertificateAuthoritiesPem(fromText, text("intermediate-ca.pem"))

        const fromBytes = yield* server()
        yield* SslContext.loadCertificateChainPem(fromBytes, bytes("server-chain.pem"))
        yield* SslContext.loadPrivateKeyPem(fromBytes, bytes("server.key.der"), { asn1: true })
        yield* SslContext.loadVerifyRootCertificatesPem(fromBytes, bytes("root-ca.pem"))
        yield* SslContext.loadSuggestedCertificateAuthoritiesPem(fromBytes, bytes("intermediate-ca.pem"))

        for (const ctx of [fromText, fromBytes]) {
          expect(ctx.state.chain.map((c) => c.pem)).toEqual(fromPaths.state.chain.map((c) => c.pem))
          expect(ctx.state.roots.map((c) => c.pem)).toEqual(fromPaths.state.roots.map((c) => c.pem))
          expect(ctx.state.suggestedCas.map((c) => c.pem)).toEqual(fromPaths.state.suggestedCas.map((c) => c.pem))
          expect(loadedPublicKey(ctx.state.key)).toBe(loadedPublicKey(fromPaths.state.key))
        }

        const mismatch = yield* Effect.flip(SslContext.loadPrivateKeyPem(fromText, text("mismatch.key")))
        expect(mismatch.reason).toBe("KeyMismatch")
        expect(mismatch.message).toContain("<memory>")
        const noCert = yield* Effect.flip(SslContext.loadCertificateChainPem(fromText, text("server.key")))
        expect(noCert.reason).toBe("NoCertificate")
        expect(noCert.message).toContain("<memory>")
        expect((yield* Effect.flip(SslContext.loadVerifyRootCertificatesPem(fromText, ""))).reason).toBe("Empty")
        expect((yield* Effect.flip(SslContext.loadPrivateKeyPem(fromText, text("server.pem")))).reason).toBe("NoKey")
        expect((yield* Effect.flip(SslContext.loadSuggestedCertificateAuthoritiesPem(fromText, "hello"))).reason)
          .toBe("Malformed")
      }).pipe(Effect.provide(NodeContext.layer)))
  })

  describe("listener targets", () => {
    it.effect("a { context: ServerContext } stands for its server context", () =>
      Effect.gen(function*() {
        const ctx = yield* server()
        const listener = { context: ctx }
        yield* SslContext.loadCertificateChain(listener, fixture("server-chain.pem"))
        yield* SslContext.loadPrivateKey(listener, fixture("server.key"))
        yield* SslContext.loadVerifyRootCertificates(listener, fixture("root-ca.pem"))
        yield* SslContext.loadSuggestedCertificateAuthorities(listener, fixture("root-ca.pem"))
        yield* SslContext.setVerify(listener, true)
        expect(SslContext.contextOf(listener)).toBe(ctx)
        expect(ctx.state.chain).toHaveLength(2)
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("server.pem"))
        expect(ctx.state.roots).toHaveLength(1)
        expect(ctx.state.suggestedCas).toHaveLength(1)
        expect(ctx.state.verify).toBe(true)
        yield* SslContext.setIdentity(listener, {
          chain: fixture("other-server-chain.pem"),
          key: fixture("other-server.key")
        })
        expect(loadedPublicKey(ctx.state.key)).toBe(certificatePublicKey("other-server.pem"))
      }).pipe(Effect.provide(NodeContext.layer)))
  })
})
