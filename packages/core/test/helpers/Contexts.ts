/**
 * The layer the node tests run on, and contexts built from the fixtures: servers with the fixture
 * chain for localhost, clients that trust the fixture root, with or without a client certificate.
 */
import { type Pki, type Ssl, SslContext, type SslError, TestCertificates } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { NodeContext } from "@effect/platform-node"
import type { FileSystem } from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { fixture } from "./Fixtures.js"

/** NodeSsl's Ssl and Pki with Node's file system: what a test that talks TLS provides. */
export const TestLayer: Layer.Layer<Ssl.Ssl | Pki.Pki | NodeContext.NodeContext> = Layer.mergeAll(
  NodeSsl.layer,
  NodeContext.layer
)

type Protocol = Parameters<typeof SslContext.makeClient>[0]

/** A server context with the fixture leaf + intermediate for localhost. */
export const serverContext = (
  chain = "server-chain.pem",
  key = "server.key",
  protocol: Protocol = "auto"
): Effect.Effect<SslContext.ServerContext, SslError.SslError, FileSystem | Pki.Pki> =>
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeServer(protocol)
    yield* SslContext.loadCertificateChain(ctx, fixture(chain))
    yield* SslContext.loadPrivateKey(ctx, fixture(key), { rsa: false })
    return ctx
  })

/** A client context that trusts the fixture root CA. */
export const clientContext = (
  protocol: Protocol = "auto"
): Effect.Effect<SslContext.ClientContext, SslError.SslError, FileSystem | Pki.Pki> =>
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeClient(protocol)
    yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
    return ctx
  })

/**
 * A client context that trusts the fixture root CA and presents a client certificate: by default
 * the fixture client's, issued under that root ("untrusted-client.pem" is one from another CA).
 */
export const clientWithCertificate = (
  chain = "client-chain.pem",
  key = "client.key",
  protocol: Protocol = "auto"
): Effect.Effect<SslContext.ClientContext, SslError.SslError, FileSystem | Pki.Pki> =>
  Effect.gen(function*() {
    const ctx = yield* clientContext(protocol)
    yield* SslContext.loadCertificateChain(ctx, fixture(chain))
    yield* SslContext.loadPrivateKey(ctx, fixture(key))
    return ctx
  })

/** A server context (fixture chain) that requires a client certificate verifying against the fixture root. */
export const requiringClientCertificates = (
  protocol: Protocol = "auto"
): Effect.Effect<SslContext.ServerContext, SslError.SslError, FileSystem | Pki.Pki> =>
  Effect.gen(function*() {
    const ctx = yield* serverContext("server-chain.pem", "server.key", protocol)
    yield* SslContext.setVerify(ctx, true)
    yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
    return ctx
  })

/** A server context with the shipped insecure test certificate. */
export const testServerContext: Effect.Effect<SslContext.ServerContext, SslError.SslError, FileSystem | Pki.Pki> =
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeServer()
    yield* SslContext.loadCertificateChain(ctx, TestCertificates.path)
    yield* SslContext.loadPrivateKey(ctx, TestCertificates.path)
    return ctx
  })
