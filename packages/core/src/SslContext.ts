/**
 * Client and server contexts: the protocol, identity (certificate chain and key), trust roots and
 * verification settings that connections are made with. Contexts are mutable through Effects, as
 * in Racket: a change applies to every connection made after it.
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Loading from "./internal/loading.js"
import * as Pki from "./Pki.js"
import * as Protocol from "./Protocol.js"
import {
  CertificateLoadError,
  InvalidArgumentError,
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
 * A certificate as loaded: the certificate alone as PEM, and its DER.
 *
 * @since 0.1.0
 * @category models
 */
export type Certificate = Pki.Certificate

/**
 * A private key as loaded: decrypted, as PKCS#8 PEM.
 *
 * @since 0.1.0
 * @category models
 */
export type PrivateKey = Pki.PrivateKey

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
  /**
   * an identity loaded from a PKCS#12 file: the platform takes its key (and full chain) from the
   * file itself; `chain` then holds the file's leaf and its issuer, and `key` is undefined
   */
  pkcs12: Pki.Pkcs12 | undefined
  /** client: verify the server (default true); server: require a verified client certificate (default false) */
  verify: boolean
  /** trust the platform's default roots besides the loaded ones (clients, by default) */
  useDefaultTrust: boolean
  /** verify the peer if it presents a certificate, accept one that presents none (Racket's try-verify) */
  tryVerify: boolean
  /** client: check the server's certificate against the host name connected to (default true) */
  verifyHostname: boolean
  roots: ReadonlyArray<Certificate>
  suggestedCas: ReadonlyArray<Certificate>
  /** OpenSSL cipher list for TLS 1.2 and below */
  ciphers: string | undefined
  /** TLS 1.3 cipher suites, colon-separated */
  cipherSuites: string | undefined
  /** client: protocols offered; server: protocols accepted, in order of preference */
  alpn: ReadonlyArray<string>
  /** server: when the client's ALPN offer shares nothing with `alpn`, continue without ALPN (true) or refuse */
  alpnAllowNoMatch: boolean
  /** server: picks another context by the name the client asked for (SNI) */
  serverNameCallback: ((servername: string) => Effect.Effect<Option.Option<ServerContext>>) | undefined
  /** receives each NSS key-log line (SSLKEYLOGFILE format, without newline) */
  keyLog: KeyLog | undefined
  /** a transport close without close_notify fails the read with IoError "TruncatedEof" (default false) */
  detectTruncation: boolean
  /** client: cache sessions per host, port and server name and offer them again (default true) */
  sessionCache: boolean
  /** SPKI SHA-256 pins (base64); when non-empty, the verified chain must contain one of them */
  pinnedPublicKeys: ReadonlyArray<string>
  sealed: boolean
  version: number
}

/**
 * Where TLS secrets go for debugging (Wireshark's SSLKEYLOGFILE format): a function, or a file
 * that lines are appended to.
 *
 * @since 0.1.0
 * @category models
 */
export type KeyLog = ((line: string) => void) | { readonly file: string }

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
    pkcs12: undefined,
    verify: kind === "client",
    tryVerify: false,
    verifyHostname: kind === "client",
    useDefaultTrust: kind === "client",
    roots: [],
    suggestedCas: [],
    ciphers: undefined,
    cipherSuites: undefined,
    alpn: [],
    alpnAllowNoMatch: true,
    serverNameCallback: undefined,
    keyLog: undefined,
    detectTruncation: false,
    sessionCache: true,
    pinnedPublicKeys: [],
    sealed: false,
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

const isSealed = (target: Target): boolean => contextOf(target).state.sealed

const sealedError = (operation: string) =>
  new InvalidArgumentError({
    argument: "context",
    value: operation,
    reason: "the context is sealed; no further changes are allowed"
  })

/** Applies a change unless the context is sealed. */
const change = (
  target: Target,
  operation: string,
  f: (state: State) => void
): Effect.Effect<void, InvalidArgumentError> =>
  Effect.suspend(() => (isSealed(target) ? Effect.fail(sealedError(operation)) : Effect.sync(() => update(target, f))))

const checkSealedCertificate = (target: Target, path: string): Effect.Effect<void, CertificateLoadError> =>
  Effect.suspend(() =>
    isSealed(target) ? Effect.fail(new CertificateLoadError({ path, reason: "Sealed" })) : Effect.void
  )

const checkSealedKey = (target: Target, path: string): Effect.Effect<void, PrivateKeyLoadError> =>
  Effect.suspend(
    () => (isSealed(target) ? Effect.fail(new PrivateKeyLoadError({ path, reason: "Sealed" })) : Effect.void)
  )

type Install = (state: State, certs: ReadonlyArray<Certificate>, pki: Pki.Service) => void

/** Reads certificates, then installs them, unless the context is sealed. */
const installFrom = <R>(
  target: Target,
  path: string,
  read: Effect.Effect<ReadonlyArray<Certificate>, CertificateLoadError, R>,
  install: Install
): Effect.Effect<void, CertificateLoadError, R | Pki.Pki> =>
  Effect.zipRight(
    checkSealedCertificate(target, path),
    Effect.flatMap(
      read,
      (certs) =>
        Effect.flatMap(Pki.Pki, (pki) => Effect.sync(() => update(target, (state) => install(state, certs, pki))))
    )
  )

const fromFile = (target: Target, path: string, install: Install) =>
  installFrom(target, path, Loading.readCertificates(path), install)

const fromMemory = (target: Target, pem: string | Uint8Array, install: Install) =>
  installFrom(target, Loading.memoryPath, Loading.parseCertificates(pem, Loading.memoryPath), install)

/**
 * Loads a certificate chain (leaf first, then intermediates; PEM, or one DER certificate) as the
 * context's identity, replacing the old chain. A loaded key that does not match the new leaf is
 * dropped, as OpenSSL does, so a certificate and key can be rotated by loading the chain, then its
 * key; a key loaded from a PKCS#12 file is always dropped (it cannot be taken out of the file).
 *
 * @since 0.1.0
 * @category identity
 */
export const loadCertificateChain = (
  target: Target,
  path: string
): Effect.Effect<void, CertificateLoadError, FileSystem.FileSystem | Pki.Pki> => fromFile(target, path, installChain)

/**
 * Like `loadCertificateChain`, from PEM text or bytes in memory.
 *
 * @since 0.1.0
 * @category identity
 */
export const loadCertificateChainPem = (
  target: Target,
  pem: string | Uint8Array
): Effect.Effect<void, CertificateLoadError, Pki.Pki> => fromMemory(target, pem, installChain)

const installChain: Install = (state, chain, pki) => {
  state.chain = chain
  state.pkcs12 = undefined
  if (state.key !== undefined && !pki.keyMatches(state.key, chain[0]!)) state.key = undefined
}

/**
 * Options for reading a private key. `rsa` (default true, as in the seed): take the first RSA key
 * and skip keys of other types; `asn1` (default false): the key is DER, not PEM; `passphrase`:
 * decrypts an encrypted key (PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy
 * `Proc-Type: 4,ENCRYPTED` PEM).
 *
 * @since 0.2.0
 * @category models
 */
export interface KeyOptions {
  readonly rsa?: boolean | undefined
  readonly asn1?: boolean | undefined
  readonly passphrase?: string | undefined
}

/**
 * Loads the first private key from a file: PEM by default, DER with `asn1: true`. With `rsa: true`
 * (the default, as in the seed) the first RSA key is taken and other key types are skipped; with
 * `rsa: false` the first key of any type. An encrypted key needs its `passphrase` (else it fails
 * with reason `"Encrypted"`; a wrong one with `"BadPassphrase"`; one encrypted with DES, which
 * OpenSSL 3 has only in its legacy provider, with `"Unsupported"`). A key that does not match the
 * loaded certificate fails here (`"KeyMismatch"`, as OpenSSL decides it), not at the first
 * handshake.
 *
 * @since 0.1.0
 * @category identity
 */
export const loadPrivateKey = (
  target: Target,
  path: string,
  options?: KeyOptions
): Effect.Effect<void, PrivateKeyLoadError, FileSystem.FileSystem | Pki.Pki> =>
  Effect.zipRight(
    checkSealedKey(target, path),
    Effect.flatMap(Loading.readPrivateKey(path, keyOptions(options)), (key) => installKey(target, key, path))
  )

/**
 * Like `loadPrivateKey`, from PEM text or (with `asn1: true`) DER bytes in memory.
 *
 * @since 0.1.0
 * @category identity
 */
export const loadPrivateKeyPem = (
  target: Target,
  data: string | Uint8Array,
  options?: KeyOptions
): Effect.Effect<void, PrivateKeyLoadError, Pki.Pki> =>
  Effect.zipRight(
    checkSealedKey(target, Loading.memoryPath),
    Effect.flatMap(
      Loading.parsePrivateKey(data, Loading.memoryPath, keyOptions(options)),
      (key) => installKey(target, key, Loading.memoryPath)
    )
  )

const keyOptions = (options?: KeyOptions): Pki.KeyOptions => ({
  rsa: options?.rsa ?? true,
  asn1: options?.asn1 ?? false,
  passphrase: options?.passphrase
})

const installKey = (target: Target, key: PrivateKey, path: string): Effect.Effect<void, PrivateKeyLoadError, Pki.Pki> =>
  Effect.flatMap(Pki.Pki, (pki) => {
    const leaf = contextOf(target).state.chain[0]
    if (leaf !== undefined && !pki.keyMatches(key, leaf)) {
      return Effect.fail(new PrivateKeyLoadError({ path, reason: "KeyMismatch" }))
    }
    update(target, (state) => {
      state.key = key
      state.pkcs12 = undefined
    })
    return Effect.void
  })

/**
 * Replaces the chain and key together, checked against each other first, with no moment in
 * which a connection could see one without the other: for rotating a live listener's certificate.
 * Each of `chain` and `key` is a path, PEM text, or bytes; `rsa`, `asn1` and `passphrase` are for
 * the key, as in `loadPrivateKey`.
 *
 * @since 0.1.0
 * @category identity
 */
export const setIdentity = (
  target: Target,
  identity: {
    readonly chain: Source
    readonly key: Source
  } & KeyOptions
): Effect.Effect<void, CertificateLoadError | PrivateKeyLoadError, FileSystem.FileSystem | Pki.Pki> =>
  Effect.gen(function*() {
    yield* checkSealedCertificate(target, Loading.memoryPath)
    const chain = yield* Loading.certificatesFromSource(identity.chain)
    const key = yield* Loading.privateKeyFromSource(identity.key, keyOptions(identity))
    const pki = yield* Pki.Pki
    if (!pki.keyMatches(key, chain[0]!)) {
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
      state.pkcs12 = undefined
    })
  })

/**
 * Loads a PKCS#12 (PFX) file as the context's identity: its certificate, key and chain at once,
 * replacing the old ones, checked as `setIdentity` checks a pair (its key must match its
 * certificate). A protected file needs its `passphrase` (else `PrivateKeyLoadError "Encrypted"`; a
 * wrong one: `"BadPassphrase"`). Files encrypted with RC2 (OpenSSL 1.x's default, `-legacy`) fail
 * with `"Unsupported"`: OpenSSL 3 reads them only with its legacy provider.
 *
 * The key stays in the file (node:crypto cannot take it out), so loading a chain afterwards drops
 * it, and loading a key afterwards replaces it (checked against the file's certificate).
 *
 * @since 0.2.0
 * @category identity
 */
export const loadPkcs12 = (
  target: Target,
  path: string,
  options?: { readonly passphrase?: string | undefined }
): Effect.Effect<void, CertificateLoadError | PrivateKeyLoadError, FileSystem.FileSystem | Pki.Pki> =>
  Effect.zipRight(
    checkSealedKey(target, path),
    Effect.flatMap(Loading.readPkcs12(path, options?.passphrase), ({ chain, pkcs12 }) =>
      Effect.sync(() =>
        update(target, (state) => {
          state.chain = chain
          state.key = undefined
          state.pkcs12 = pkcs12
        })
      ))
  )

/**
 * Turns verification of the peer on or off. On a client context (on by default) it checks the
 * server's chain and host name, and turns both on or off together (`setVerifyHostname` after it
 * sets the host-name check alone); on a server context (off by default) it requires a client
 * certificate that verifies against the loaded roots.
 *
 * @since 0.1.0
 * @category verification
 */
export const setVerify = (target: Target, verify: boolean): Effect.Effect<void, InvalidArgumentError> =>
  change(target, "setVerify", (state) => {
    state.verify = verify
    if (verify) state.tryVerify = false
    if (contextOf(target).kind === "client") state.verifyHostname = verify
  })

/**
 * Adds the PEM certificates in a file to the roots trusted to verify peers; calls accumulate.
 *
 * @since 0.1.0
 * @category verification
 */
export const loadVerifyRootCertificates = (
  target: Target,
  path: string
): Effect.Effect<void, CertificateLoadError, FileSystem.FileSystem | Pki.Pki> => fromFile(target, path, addRoots)

/**
 * Like `loadVerifyRootCertificates`, from PEM text or bytes in memory.
 *
 * @since 0.1.0
 * @category verification
 */
export const loadVerifyRootCertificatesPem = (
  target: Target,
  pem: string | Uint8Array
): Effect.Effect<void, CertificateLoadError, Pki.Pki> => fromMemory(target, pem, addRoots)

const addRoots: Install = (state, certs) => {
  state.roots = [...state.roots, ...certs]
}

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
): Effect.Effect<void, CertificateLoadError, FileSystem.FileSystem | Pki.Pki> => fromFile(target, path, addSuggested)

/**
 * Like `loadSuggestedCertificateAuthorities`, from PEM text or bytes in memory.
 *
 * @since 0.1.0
 * @category verification
 */
export const loadSuggestedCertificateAuthoritiesPem = (
  target: Target,
  pem: string | Uint8Array
): Effect.Effect<void, CertificateLoadError, Pki.Pki> => fromMemory(target, pem, addSuggested)

const addSuggested: Install = (state, certs) => {
  state.suggestedCas = [...state.suggestedCas, ...certs]
}

/**
 * Verifies the peer if it presents a certificate and accepts a peer that presents none (Racket's
 * `ssl-try-verify!`): a server that asks for, but does not require, a client certificate. A
 * certificate that is presented and does not verify still fails the connection.
 *
 * @since 0.1.0
 * @category verification
 */
export const setTryVerify = (target: Target, tryVerify: boolean): Effect.Effect<void, InvalidArgumentError> =>
  change(target, "setTryVerify", (state) => {
    state.tryVerify = tryVerify
    if (tryVerify) state.verify = false
  })

/**
 * Turns the host-name check of a client context on or off, apart from chain verification
 * (Racket's `ssl-set-verify-hostname!`). With chain verification off and this on, the host name
 * is still checked, after the handshake: a certificate for another host fails the connection
 * with `VerifyError "HostnameMismatch"`.
 *
 * @since 0.1.0
 * @category verification
 */
export const setVerifyHostname = (target: Target, verify: boolean): Effect.Effect<void, InvalidArgumentError> =>
  change(target, "setVerifyHostname", (state) => {
    state.verifyHostname = verify
  })

/**
 * A trust source (Racket's verify sources): a PEM file, or a directory of certificates named by
 * their subject hash (`c_rehash` / `openssl rehash` layout).
 *
 * @since 0.1.0
 * @category models
 */
export type VerifySource = string | { readonly directory: string }

/**
 * Adds the certificates of a trust source to the trusted roots. A directory is read now; a
 * missing directory adds nothing (as in Racket). With `try: true`, failures are ignored.
 *
 * @since 0.1.0
 * @category verification
 */
export const loadVerifySource = (
  target: Target,
  source: VerifySource,
  options?: { readonly try?: boolean | undefined }
): Effect.Effect<void, CertificateLoadError, FileSystem.FileSystem | Pki.Pki> => {
  const load = typeof source === "string"
    ? loadVerifyRootCertificates(target, source)
    : installFrom(target, source.directory, Loading.readHashedDirectory(source.directory), addRoots)
  return options?.try === true
    ? Effect.catchAll(load, (error) => error.reason === "Sealed" ? Effect.fail(error) : Effect.void)
    : load
}

/**
 * The platform's default trust sources (Racket's `ssl-default-verify-sources`): `SSL_CERT_FILE`
 * and `SSL_CERT_DIR` when set, else Debian/OpenSSL's usual places.
 *
 * @since 0.1.0
 * @category verification
 */
export const defaultVerifySources: Effect.Effect<ReadonlyArray<VerifySource>> = Effect.gen(function*() {
  const file = yield* Config.withDefault(Config.string("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt")
  const directory = yield* Config.withDefault(Config.string("SSL_CERT_DIR"), "/etc/ssl/certs")
  return [file, { directory }]
}).pipe(Effect.orElseSucceed((): ReadonlyArray<VerifySource> => []))

/**
 * Loads every default trust source, ignoring the ones that fail (Racket's
 * `ssl-load-default-verify-sources!`).
 *
 * @since 0.1.0
 * @category verification
 */
export const loadDefaultVerifySources = (
  target: Target
): Effect.Effect<void, CertificateLoadError, FileSystem.FileSystem | Pki.Pki> =>
  Effect.flatMap(
    defaultVerifySources,
    (sources) => Effect.forEach(sources, (source) => loadVerifySource(target, source, { try: true }), { discard: true })
  )

/**
 * Checks cipher strings against the platform's TLS library; adapters provide it (`NodeSsl.layer`
 * does), so that a bad string fails when it is set, not at the first handshake. Without one, only
 * the characters are checked.
 *
 * @since 0.1.0
 * @category references
 */
export class CipherValidator extends Context.Reference<CipherValidator>()(
  "@effect-ssl/core/SslContext/CipherValidator",
  {
    defaultValue: (): (kind: "ciphers" | "cipherSuites", value: string) => string | undefined => (_, value) =>
      /^[A-Za-z0-9_+\-!@=:,. ]+$/.test(value) ? undefined : "not an OpenSSL cipher string"
  }
) {}

/**
 * Sets the OpenSSL cipher list for TLS 1.2 and below (e.g. `"ECDHE+AESGCM:!aNULL"`); an invalid
 * string fails here with `InvalidArgumentError` (Racket's `ssl-set-ciphers!`).
 *
 * Contexts run at OpenSSL security level 2 (keys of 112 bits and up: RSA 2048, P-256) unless the
 * list names another, as in `"DEFAULT@SECLEVEL=1"`; TLS 1.0 and 1.1 contexts run at level 0.
 *
 * @since 0.1.0
 * @category ciphers
 */
export const setCiphers = (target: Target, ciphers: string): Effect.Effect<void, InvalidArgumentError> =>
  setCipherOption(target, "ciphers", ciphers)

/**
 * Sets the TLS 1.3 cipher suites (e.g. `"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"`).
 *
 * @since 0.1.0
 * @category ciphers
 */
export const setCipherSuites = (target: Target, suites: string): Effect.Effect<void, InvalidArgumentError> =>
  setCipherOption(target, "cipherSuites", suites)

const setCipherOption = (target: Target, kind: "ciphers" | "cipherSuites", value: string) =>
  Effect.flatMap(CipherValidator, (validate) => {
    const problem = typeof value === "string" && value.length > 0
      ? validate(kind, value)
      : "expected a non-empty string"
    if (problem !== undefined) {
      return Effect.fail(new InvalidArgumentError({ argument: kind, value, reason: problem }))
    }
    return change(target, kind === "ciphers" ? "setCiphers" : "setCipherSuites", (state) => {
      state[kind] = value
    })
  })

const alpnProblem = (protocols: ReadonlyArray<string>): string | undefined => {
  for (const p of protocols) {
    if (typeof p !== "string" || p.length === 0 || new TextEncoder().encode(p).length > 255) {
      return "each protocol must be a non-empty string of at most 255 bytes"
    }
  }
  return undefined
}

/**
 * Sets the application protocols (ALPN), most preferred first: on a client context, those it
 * offers; on a server context, those it accepts, chosen by the server's order (Racket's
 * `ssl-set-server-alpn!`). When a client's offer shares nothing with a server's list, the server
 * continues without ALPN, or, with `allowNoMatch: false`, refuses the handshake with a
 * `no_application_protocol` alert (the client sees `HandshakeError "NoApplicationProtocol"`). A
 * client that offers none is served without ALPN. `session.alpnProtocol` tells the choice.
 *
 * @since 0.1.0
 * @category alpn
 */
export const setAlpn = (
  target: Target,
  protocols: ReadonlyArray<string>,
  options?: {
    /** server: continue without ALPN when nothing overlaps (default true, as Racket's) */
    readonly allowNoMatch?: boolean | undefined
  }
): Effect.Effect<void, InvalidArgumentError> =>
  Effect.suspend(() => {
    const problem = alpnProblem(protocols)
    if (problem !== undefined) {
      return Effect.fail(
        new InvalidArgumentError({ argument: "protocols", value: protocols.join(","), reason: problem })
      )
    }
    const allowNoMatch = options?.allowNoMatch ?? true
    if (typeof allowNoMatch !== "boolean") {
      return Effect.fail(
        new InvalidArgumentError({ argument: "allowNoMatch", value: allowNoMatch, reason: "expected a boolean" })
      )
    }
    return change(target, "setAlpn", (state) => {
      state.alpn = [...protocols]
      state.alpnAllowNoMatch = allowNoMatch
    })
  })

/**
 * Server-side SNI: `callback` receives the host name the client asked for and returns the server
 * context to use, or None to keep this one (Racket's
 * `ssl-set-server-name-identification-callback!`).
 *
 * @since 0.1.0
 * @category identity
 */
export const setServerNameCallback = (
  target: ServerContext | { readonly context: ServerContext },
  callback: (servername: string) => Effect.Effect<Option.Option<ServerContext>>
): Effect.Effect<void, InvalidArgumentError> =>
  change(target, "setServerNameCallback", (state) => {
    state.serverNameCallback = callback
  })

/**
 * Logs TLS secrets in the SSLKEYLOGFILE format to a function or a file, so that a capture can be
 * decrypted with Wireshark; `undefined` turns it off (the default). Never leave it on in production.
 *
 * @since 0.1.0
 * @category debugging
 */
export const setKeyLog = (target: Target, keyLog: KeyLog | undefined): Effect.Effect<void, InvalidArgumentError> =>
  change(target, "setKeyLog", (state) => {
    state.keyLog = keyLog
  })

/**
 * Makes a transport close without a TLS close_notify fail the reader with `IoError
 * "TruncatedEof"`, on this context's connections (off by default, as in node:tls, Go and Racket,
 * where such a close at a record boundary ends input like a clean EOF). Detection runs TLS through
 * a JavaScript stream instead of Node's native socket handle, which costs throughput: turn it on
 * for protocols whose messages do not say where they end (HTTP/1.0 bodies read to EOF, say).
 *
 * @since 0.2.0
 * @category lifetimes
 */
export const setDetectTruncation = (target: Target, on: boolean): Effect.Effect<void, InvalidArgumentError> =>
  typeof on !== "boolean"
    ? Effect.fail(new InvalidArgumentError({ argument: "on", value: on, reason: "expected a boolean" }))
    : change(target, "setDetectTruncation", (state) => {
      state.detectTruncation = on
    })

/**
 * Turns a client context's session cache on or off (on by default): sessions the servers offer
 * (TLS 1.3 tickets, TLS 1.2 tickets and session ids) are kept per host, port and server name and
 * offered on the next connection there, which then skips the certificate exchange
 * (`session.resumed`). Turning it off drops what is cached.
 *
 * @since 0.2.0
 * @category sessions
 */
export const setSessionCache = (target: Target, on: boolean): Effect.Effect<void, InvalidArgumentError> =>
  typeof on !== "boolean"
    ? Effect.fail(new InvalidArgumentError({ argument: "on", value: on, reason: "expected a boolean" }))
    : change(target, "setSessionCache", (state) => {
      state.sessionCache = on
    })

const pinPattern = /^[A-Za-z0-9+/]{43}=$/

/**
 * Pins public keys: after the usual verification, the peer's chain must contain a certificate
 * whose SubjectPublicKeyInfo has one of these SHA-256 digests (base64, the usual pin format, as
 * `PeerCertificate.spkiSha256` gives it), else the connection fails with `VerifyError
 * "PinMismatch"`. A pin may name the leaf, an intermediate or the root the chain ends at. An
 * empty list turns pinning off (the default).
 *
 * @example
 * ```ts
 * import { SslContext } from "@effect-ssl/core"
 * import { Effect } from "effect"
 *
 * const pinned = Effect.gen(function*() {
 *   const ctx = yield* SslContext.makeClient()
 *   yield* SslContext.setPinnedPublicKeys(ctx, ["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="])
 *   return ctx
 * })
 * ```
 *
 * @since 0.2.0
 * @category verification
 */
export const setPinnedPublicKeys = (
  target: Target,
  pins: ReadonlyArray<string>
): Effect.Effect<void, InvalidArgumentError> => {
  const bad = Array.isArray(pins) ? pins.find((pin) => typeof pin !== "string" || !pinPattern.test(pin)) : pins
  if (!Array.isArray(pins) || bad !== undefined) {
    return Effect.fail(
      new InvalidArgumentError({
        argument: "pins",
        value: bad,
        reason: "expected base64 SHA-256 digests of SubjectPublicKeyInfo (44 characters, ending in '=')"
      })
    )
  }
  return change(target, "setPinnedPublicKeys", (state) => {
    state.pinnedPublicKeys = [...pins]
  })
}

/**
 * Seals a context: every later change fails with a typed error saying it is sealed (Racket's
 * `ssl-seal-context!`).
 *
 * @since 0.1.0
 * @category sealing
 */
export const seal = (target: Target): Effect.Effect<void> =>
  Effect.sync(() => {
    contextOf(target).state.sealed = true
  })

/**
 * @since 0.1.0
 * @category sealing
 */
export const isSealedContext = (target: Target): boolean => isSealed(target)

/**
 * A ready-to-use secure client context (Racket's `ssl-secure-client-context`): the platform's
 * default trust store, chain and host-name verification, TLS 1.2 at least; sealed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const secureClient: Effect.Effect<ClientContext> = Effect.gen(function*() {
  const ctx = yield* Effect.orDie(makeClient("secure"))
  yield* seal(ctx)
  return ctx
})
