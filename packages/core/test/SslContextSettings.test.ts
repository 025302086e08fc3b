import { Pki, SslContext, SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { fixture } from "./helpers/Fixtures.js"

/** Files, and certificates read by OpenSSL (node:crypto), without NodeSsl's cipher validator. */
const Files = Layer.merge(NodeContext.layer, Layer.effect(Pki.Pki, Pki.Pki).pipe(Layer.provide(NodeSsl.layer)))

describe("SslContext settings", () => {
  it.effect("a sealed context refuses every change with a typed error saying it is sealed", () =>
    Effect.gen(function*() {
      const ctx = yield* SslContext.makeServer()
      yield* SslContext.seal(ctx)
      expect(SslContext.isSealedContext(ctx)).toBe(true)
      const verify = yield* Effect.flip(SslContext.setVerify(ctx, true))
      expect(verify._tag).toBe("InvalidArgumentError")
      expect(verify.message).toContain("sealed")
      const chain = yield* Effect.flip(SslContext.loadCertificateChain(ctx, fixture("server-chain.pem")))
      expect(chain.reason).toBe("Sealed")
      const key = yield* Effect.flip(SslContext.loadPrivateKey(ctx, fixture("server.key")))
      expect(key.reason).toBe("Sealed")
      const roots = yield* Effect.flip(SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem")))
      expect(roots.reason).toBe("Sealed")
      for (
        const attempt of [
          SslContext.setCiphers(ctx, "ECDHE+AESGCM"),
          SslContext.setAlpn(ctx, ["h2"]),
          SslContext.setTryVerify(ctx, true),
          SslContext.setKeyLog(ctx, () => {})
        ]
      ) {
        const error = yield* Effect.flip(attempt)
        expect(SslError.isSslError(error)).toBe(true)
        expect(error.message).toContain("sealed")
      }
      expect(ctx.state.verify).toBe(false)
      expect(ctx.state.chain).toHaveLength(0)
    }).pipe(Effect.provide(Files)))

  it.effect("the secure client context is sealed, verifies, checks host names and needs TLS 1.2", () =>
    Effect.gen(function*() {
      const ctx = yield* SslContext.secureClient
      expect(SslContext.isClientContext(ctx)).toBe(true)
      expect(ctx.state.verify).toBe(true)
      expect(ctx.state.verifyHostname).toBe(true)
      expect(ctx.state.useDefaultTrust).toBe(true)
      expect(ctx.state.protocol.minVersion).toBe("TLSv1.2")
      expect(SslContext.isSealedContext(ctx)).toBe(true)
    }))

  it.effect("try-verify and verify exclude each other; host-name checking is separate", () =>
    Effect.gen(function*() {
      const ctx = yield* SslContext.makeServer()
      yield* SslContext.setTryVerify(ctx, true)
      expect([ctx.state.verify, ctx.state.tryVerify]).toEqual([false, true])
      yield* SslContext.setVerify(ctx, true)
      expect([ctx.state.verify, ctx.state.tryVerify]).toEqual([true, false])
      const client = yield* SslContext.makeClient()
      yield* SslContext.setVerifyHostname(client, false)
      expect([client.state.verify, client.state.verifyHostname]).toEqual([true, false])
    }))

  it.effect("without a platform validator, cipher strings with impossible characters fail when set", () =>
    Effect.gen(function*() {
      const ctx = yield* SslContext.makeClient()
      const error = yield* Effect.flip(SslContext.setCiphers(ctx, "AES;rm -rf"))
      expect(error.argument).toBe("ciphers")
      const empty = yield* Effect.flip(SslContext.setCipherSuites(ctx, ""))
      expect(empty.argument).toBe("cipherSuites")
      yield* SslContext.setCiphers(ctx, "ECDHE+AESGCM:!aNULL")
      expect(ctx.state.ciphers).toBe("ECDHE+AESGCM:!aNULL")
    }))

  it.effect("ALPN lists are checked: empty names and names over 255 bytes fail", () =>
    Effect.gen(function*() {
      const ctx = yield* SslContext.makeClient()
      expect((yield* Effect.flip(SslContext.setAlpn(ctx, [""]))).argument).toBe("protocols")
      expect((yield* Effect.flip(SslContext.setAlpn(ctx, ["x".repeat(256)]))).argument).toBe("protocols")
      yield* SslContext.setAlpn(ctx, ["h2", "http/1.1"])
      expect(ctx.state.alpn).toEqual(["h2", "http/1.1"])
    }))

  it.effect("a hashed directory of certificates is loaded; a missing one adds nothing", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "effect-ssl-hashed-"))
      fs.copyFileSync(fixture("root-ca.pem"), nodePath.join(dir, "0badcafe.0"))
      fs.copyFileSync(fixture("intermediate-ca.pem"), nodePath.join(dir, "deadbeef.0"))
      fs.copyFileSync(fixture("unknown-ca.pem"), nodePath.join(dir, "not-hashed.pem"))
      const ctx = yield* SslContext.makeClient()
      yield* SslContext.loadVerifySource(ctx, { directory: dir })
      expect(ctx.state.roots).toHaveLength(2)
      yield* SslContext.loadVerifySource(ctx, { directory: nodePath.join(dir, "missing") })
      expect(ctx.state.roots).toHaveLength(2)
      yield* SslContext.loadVerifySource(ctx, fixture("unknown-ca.pem"))
      expect(ctx.state.roots).toHaveLength(3)
      const missingFile = yield* Effect.flip(SslContext.loadVerifySource(ctx, nodePath.join(dir, "nope.pem")))
      expect(missingFile.reason).toBe("NotFound")
      yield* SslContext.loadVerifySource(ctx, nodePath.join(dir, "nope.pem"), { try: true })
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(Files)))

  it.effect("default verify sources follow SSL_CERT_FILE and SSL_CERT_DIR", () =>
    Effect.gen(function*() {
      const sources = yield* SslContext.defaultVerifySources.pipe(
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["SSL_CERT_FILE", fixture("root-ca.pem")], ["SSL_CERT_DIR", "/nowhere"]]))
        )
      )
      expect(sources).toEqual([fixture("root-ca.pem"), { directory: "/nowhere" }])
      const ctx = yield* SslContext.makeClient()
      yield* SslContext.loadDefaultVerifySources(ctx).pipe(
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["SSL_CERT_FILE", fixture("root-ca.pem")], ["SSL_CERT_DIR", "/nowhere"]]))
        )
      )
      expect(ctx.state.roots).toHaveLength(1)
    }).pipe(Effect.provide(Files)))

  it.effect("the SNI callback and key log are kept on the context", () =>
    Effect.gen(function*() {
      const ctx = yield* SslContext.makeServer()
      const lines: Array<string> = []
      yield* SslContext.setServerNameCallback(ctx, () => Effect.succeed(Option.none()))
      yield* SslContext.setKeyLog(ctx, (line) => lines.push(line))
      expect(ctx.state.serverNameCallback).toBeDefined()
      expect(ctx.state.keyLog).toBeDefined()
      yield* SslContext.setKeyLog(ctx, undefined)
      expect(ctx.state.keyLog).toBeUndefined()
    }))
})
