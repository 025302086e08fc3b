/**
 * Shared test setup: the fixture paths and contexts built from them.
 */
import { SslContext, TestCertificates } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { NodeContext } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { fileURLToPath } from "node:url"

export const fixture = (name: string): string =>
  fileURLToPath(new URL(`../../core/test/fixtures/${name}`, import.meta.url))

export const TestLayer = Layer.mergeAll(NodeSsl.layer, NodeContext.layer)

/** A server context with the fixture leaf + intermediate for localhost. */
export const serverContext = (
  chain = "server-chain.pem",
  key = "server.key",
  protocol: Parameters<typeof SslContext.makeServer>[0] = "auto"
) =>
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeServer(protocol)
    yield* SslContext.loadCertificateChain(ctx, fixture(chain))
    yield* SslContext.loadPrivateKey(ctx, fixture(key), { rsa: false })
    return ctx
  })

/** A client context that trusts the fixture root CA. */
export const clientContext = (protocol: Parameters<typeof SslContext.makeClient>[0] = "auto") =>
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeClient(protocol)
    yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
    return ctx
  })

/** A server context with the shipped insecure test certificate. */
export const testServerContext = Effect.gen(function*() {
  const ctx = yield* SslContext.makeServer()
  yield* SslContext.loadCertificateChain(ctx, TestCertificates.path)
  yield* SslContext.loadPrivateKey(ctx, TestCertificates.path)
  return ctx
})
