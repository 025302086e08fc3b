/**
 * The peer certificate a handshake reports: its DER, serial number and SPKI pin as the `openssl`
 * command prints them, and host names checked by OpenSSL's own rules.
 */
import { Ssl, SslContext } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { describeCertificate } from "../src/internal/x509.js"
import { serveOn } from "../../core/test/helpers/Connections.js"
import { serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture, fixturesDir } from "../../core/test/helpers/Fixtures.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/** What the openssl command says of a certificate file. */
const openssl = (name: string) => {
  const run = (script: string) =>
    ChildProcess.execFileSync("bash", ["-c", script], { cwd: fixturesDir, env: { ...process.env, F: name } })
  return {
    der: new Uint8Array(run("openssl x509 -in \"$F\" -outform der")),
    serialNumber: run("openssl x509 -in \"$F\" -noout -serial").toString().trim().replace(/^serial=/, ""),
    spkiSha256: run(
      "openssl x509 -in \"$F\" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"
    ).toString().trim()
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
    const x509 = new Crypto.X509Certificate(Fs.readFileSync(fixture("server.pem")))
    const described = describeCertificate(x509)
    expect(described.subject).toBe("/O=effect-ssl/CN=localhost")
    expect(described.issuer).toBe("/O=effect-ssl/CN=effect-ssl Test Intermediate CA")
    expect(described.subjectAltNames).toEqual(["DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"])
    expect(described.fingerprint256).toBe(x509.fingerprint256)
    expect(described.validFrom).toEqual(new Date("2025-01-01T00:00:00Z"))
    expect(described.validTo).toEqual(new Date("2124-12-31T23:59:59Z"))
  })
})

describe("the peer certificate of a handshake", () => {
  it.scopedLive("carries der, serialNumber and spkiSha256 as the openssl command prints them", () =>
    Effect.gen(function*() {
      for (const [chain, key, leaf] of [
        ["server-chain.pem", "server.key", "server.pem"],
        ["server-ed25519-chain.pem", "server-ed25519.key", "server-ed25519.pem"]
      ] as const) {
        const peer = yield* peerOf(chain, key)
        expect({ der: peer.der, serialNumber: peer.serialNumber, spkiSha256: peer.spkiSha256 }).toEqual(openssl(leaf))
      }
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
