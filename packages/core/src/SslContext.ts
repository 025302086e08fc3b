/**
 * Client and server contexts: the protocol, identity (certificate chain and key), trust roots and
 * verification settings that connections are made with. Contexts are mutable through Effects, as
 * in Racket: a change applies to every connection made after it.
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Loading from "./internal/loading.js"
import * as Protocol from "./Protocol.js"
import {
  CertificateLoadError,
  type InvalidArgumentError,
  PrivateKeyLoadError,
  type UnsupportedProtocolError
} from "./SslError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-ssl/core/SslContext")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A certificate as loaded: its PEM text and the public key it certifies.
 *
 * @since 0.1.0
 * @category models
 */
export type Certificate = Loading.LoadedCertificate

/**
 * A private key as loaded, normalised to PEM.
 *
 * @since 0.1.0
 * @category models
 */
export type PrivateKey = Loading.LoadedKey

/**
 * What a context holds. Platform adapters read it to build their native contexts; `version`
 * grows with every change so they can cache what they build.
 *
 * @since 0.1.0
 * @category models
 */
export interface State {
  protocol: Protocol.Resolved
  /** leaf first, then its intermediates */
  chain: ReadonlyArray<Certificate>
  key: PrivateKey | undefined
  /** client: verify the server (default true); server: require a verified client certificate (default false) */
  verify: boolean
  /** trust the platform's default roots besides the loaded ones (clients, by default) */
  useDefaultTrust: boolean
  roots: ReadonlyArray<Certificate>
  suggestedCas: ReadonlyArray<Certificate>
  version: number
}

interface Base {
  readonly [TypeId]: TypeId
  /** Read by platform adapters; change it only through this module's functions. */
  readonly state: State
}

/**
 * A context for the client side of connections (`Ssl.connect`, `Ssl.wrap` in `"connect"` mode).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientContext extends Base {
  readonly kind: "client"
}

/**
 * A context for the server side of connections (`Ssl.listen`, `Ssl.wrap` in `"accept"` mode).
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerContext extends Base {
  readonly kind: "server"
}

/**
 * Either kind of context.
 *
 * @since 0.1.0
 * @category models
 */
export type SslContext = ClientContext | ServerContext

/**
 * What the context procedures act on: a context, or anything that carries a server context
 * (a listener).
 *
 * @since 0.1.0
 * @category models
 */
export type Target = SslContext | { readonly context: ServerContext }

/**
 * Certificates or a key given directly: a path, PEM text (recognised by its `-----BEGIN` line),
 * or the file's bytes.
 *
 * @since 0.1.0
 * @category models
 */
export type Source = string | Uint8Array

const make = <K extends "client" | "server">(kind: K, protocol: Protocol.Resolved) => ({
  [TypeId]: TypeId as TypeId,
  kind,
  state: {
    protocol,
    chain: [],
    key: undefined,
    verify: kind === "client",
    useDefaultTrust: kind === "client",
    roots: [],
    suggestedCas: [],
    version: 0
  } as State
})

/**
 * Makes a client context. It verifies servers by default (against the platform's roots plus any
 * loaded ones, host name included); `setVerify(ctx, false)` gives the seed's unverified behaviour.
 *
 * @example
 * ```ts
 * import { SslContext } from "@effect-ssl/core"
 * const ctx = SslContext.makeClient("tls1.3")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = (
  protocol: Protocol.Protocol = "auto"
): Effect.Effect<ClientContext, UnsupportedProtocolError | InvalidArgumentError> =>
  Effect.map(Protocol.resolve(protocol), (resolved) => make("client", resolved))

/**
 * Makes a server context. Load a certificate chain and its key before accepting connections;
 * it asks clients for no certificate until `setVerify(ctx, true)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeServer = (
  protocol: Protocol.Protocol = "auto"
): Effect.Effect<ServerContext, UnsupportedProtocolError | InvalidArgumentError> =>
  Effect.map(Protocol.resolve(protocol), (resolved) => make("server", resolved))

/**
 * @since 0.1.0
 * @category refinements
 */
export const isSslContext = (u: unknown): u is SslContext => Predicate.hasProperty(u, TypeId)

/**
 * @since 0.1.0
 * @category refinements
 */
export const isClientContext = (u: unknown): u is ClientContext => isSslContext(u) && u.kind === "client"

/**
 * @since 0.1.0
 * @category refinements
 */
export const isServerContext = (u: unknown): u is ServerContext => isSslContext(u) && u.kind === "server"

/**
 * The context a target designates (a listener's server context, or the context itself).
 *
 * @since 0.1.0
 * @category getters
 */
export const contextOf = (target: Target): SslContext => (isSslContext(target) ? target : target.context)

const update = (target: Target, f: (state: State) => void): void => {
  const state = contextOf(target).state
  f(state)
  state.version++
}

/**
 * Loads a PEM certificate chain (leaf first, then intermediates) as the context's identity,
 * replacing the old chain. A loaded key that does not match the new leaf is dropped, as
 * OpenSSL does, so a certificate and key can be rotated by loading the chain, then its key.
 *
 * @since 0.1.0
 * @category identity
 */
export const loadCertificateChain = (
  target: Target,
  path: string
): Effect.Effect<void, CertificateLoadError, FileSystem.FileSystem> =>
  Effect.flatMap(Loading.readCertificates(path), (chain) => Effect.sync(() => installChain(target, chain)))

/**
 * Like `loadCertificateChain`, from PEM text or bytes in memory.
 *
 * @since 0.1.0
 * @category identity
 */
export const loadCertificateChainPem = (
  target: Target,
  pem: string | Uint8Array
): Effect.Effect<void, CertificateLoadError> =>
  Effect.flatMap(Loading.parseCertificates(pem, Loading.memoryPath), (chain) =>
    Effect.sync(() => installChain(target, chain)))

const installChain = (target: Target, chain: ReadonlyArray<Certificate>) =>
  update(target, (state) => {
    state.chain = chain
    if (state.key !== undefined && !Loading.keyMatches(state.key, chain[0]!)) state.key = undefined
  })

/**
 * Loads the first private key from a file: PEM by default, DER with `asn1: true`. With `rsa: true`
 * (the default, as in the seed) the first RSA key is taken and other key types are skipped; with
 * `rsa: false` the first key of any type. A key that does not match the loaded certificate fails
 * here, not at the first handshake.
 *
 * @since 0.1.0
 * @category identity
 */
export const loadPrivateKey = (
  target: Target,
  path: string,
  options?: { readonly rsa?: boolean | undefined; readonly asn1?: boolean | undefined }
): Effect.Effect<void, PrivateKeyLoadError, FileSystem.FileSystem> =>
  Effect.flatMap(Loading.readPrivateKey(path, keyOptions(options)), (key) => installKey(target, key, path))

/**
 * Like `loadPrivateKey`, from PEM text or (with `asn1: true`) DER bytes in memory.
 *
 * @since 0.1.0
 * @category identity
 */
export const loadPrivateKeyPem = (
  target: Target,
  data: string | Uint8Array,
  options?: { readonly rsa?: boolean | undefined; readonly asn1?: boolean | undefined }
): Effect.Effect<void, PrivateKeyLoadError> =>
  Effect.flatMap(
    Loading.parsePrivateKey(data, Loading.memoryPath, keyOptions(options)),
    (key) => installKey(target, key, Loading.memoryPath)
  )

const keyOptions = (options?: { readonly rsa?: boolean | undefined; readonly asn1?: boolean | undefined }) => ({
  rsa: options?.rsa ?? true,
  asn1: options?.asn1 ?? false
})

const installKey = (target: Target, key: PrivateKey, path: string): Effect.Effect<void, PrivateKeyLoadError> =>
  Effect.suspend(() => {
    const leaf = contextOf(target).state.chain[0]
    if (leaf !== undefined && !Loading.keyMatches(key, leaf)) {
      return Effect.fail(new PrivateKeyLoadError({ path, reason: "KeyMismatch" }))
    }
    update(target, (state) => {
      state.key = key
    })
    return Effect.void
  })

/**
 * Replaces the chain and key together, checked against each other first, with no moment in
 * which a connection could see one without the other: for rotating a live listener's certificate.
 * Each of `chain` and `key` is a path, PEM text, or bytes.
 *
 * @since 0.1.0
 * @category identity
 */
export const setIdentity = (
  target: Target,
  identity: {
    readonly chain: Source
    readonly key: Source
    readonly rsa?: boolean | undefined
    readonly asn1?: boolean | undefined
  }
): Effect.Effect<void, CertificateLoadError | PrivateKeyLoadError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const chain = yield* Loading.certificatesFromSource(identity.chain)
    const key = yield* Loading.privateKeyFromSource(identity.key, keyOptions(identity))
    if (!Loading.keyMatches(key, chain[0]!)) {
      return yield* new CertificateLoadError({
        path: typeof identity.chain === "string" && !Loading.isPemText(identity.chain)
          ? identity.chain
          : Loading.memoryPath,
        reason: "KeyMismatch"
      })
    }
    update(target, (state) => {
      state.chain = chain
      state.key = key
    })
  })

/**
 * Turns verification of the peer on or off. On a client context (on by default) it checks the
 * server's chain and host name; on a server context (off by default) it requires a client
 * certificate that verifies against the loaded roots.
 *
 * @since 0.1.0
 * @category verification
 */
export const setVerify = (target: Target, verify: boolean): Effect.Effect<void> =>
  Effect.sync(() =>
    update(target, (state) => {
      state.verify = verify
    })
  )

/**
 * Adds the PEM certificates in a file to the roots trusted to verify peers; calls accumulate.
 *
 * @since 0.1.0
 * @category verification
 */
export const loadVerifyRootCertificates = (
  target: Target,
  path: string
): Effect.Effect<void, CertificateLoadError, FileSystem.FileSystem> =>
  Effect.flatMap(Loading.readCertificates(path), (certs) => Effect.sync(() => addRoots(target, certs)))

/**
 * Like `loadVerifyRootCertificates`, from PEM text or bytes in memory.
 *
 * @since 0.1.0
 * @category verification
 */
export const loadVerifyRootCertificatesPem = (
  target: Target,
  pem: string | Uint8Array
): Effect.Effect<void, CertificateLoadError> =>
  Effect.flatMap(Loading.parseCertificates(pem, Loading.memoryPath), (certs) =>
    Effect.sync(() => addRoots(target, certs)))

const addRoots = (target: Target, certs: ReadonlyArray<Certificate>) =>
  update(target, (state) => {
    state.roots = [...state.roots, ...certs]
  })

/**
 * Loads the CA certificates a server names in its certificate request, telling clients which
 * certificates it accepts. They are not thereby trusted: load them as roots for that.
 *
 * @since 0.1.0
 * @category verification
 */
export const loadSuggestedCertificateAuthorities = (
  target: Target,
  path: string
): Effect.Effect<void, CertificateLoadError, FileSystem.FileSystem> =>
  Effect.flatMap(Loading.readCertificates(path), (certs) => Effect.sync(() => addSuggested(target, certs)))

/**
 * Like `loadSuggestedCertificateAuthorities`, from PEM text or bytes in memory.
 *
 * @since 0.1.0
 * @category verification
 */
export const loadSuggestedCertificateAuthoritiesPem = (
  target: Target,
  pem: string | Uint8Array
): Effect.Effect<void, CertificateLoadError> =>
  Effect.flatMap(Loading.parseCertificates(pem, Loading.memoryPath), (certs) =>
    Effect.sync(() => addSuggested(target, certs)))

const addSuggested = (target: Target, certs: ReadonlyArray<Certificate>) =>
  update(target, (state) => {
    state.suggestedCas = [...state.suggestedCas, ...certs]
  })
