/**
 * An SslContext compiled into a node:tls SecureContext, once per change of the context, and
 * shared by every connection made with it (building one per connection costs half a millisecond).
 *
 * @internal
 */
import type { SslContext as SslContextT } from "@effect-ssl/core"
import { Protocol, SslError } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Crypto from "node:crypto"
import * as Tls from "node:tls"
import { identityOptions } from "./x509.js"

/** @internal */
export interface Compiled {
  readonly version: number
  readonly secureContext: Tls.SecureContext
  /**
   * Server side, when suggested CAs that are not roots joined the native trust store (see below):
   * the SHA-256 fingerprints of the roots, the only anchors a client chain may end at.
   */
  readonly anchors: ReadonlySet<string> | undefined
}

const compiled = new WeakMap<SslContextT.SslContext, Compiled>()

const contextFailure = (error: unknown) =>
  new SslError.InvalidArgumentError({
    argument: "context",
    value: "SslContext",
    reason: `OpenSSL rejected its settings: ${error instanceof Error ? error.message : String(error)}`
  })

const defaultSuites = Tls.DEFAULT_CIPHERS.split(":").filter((c) => c.startsWith("TLS_")).join(":")
const defaultList = Tls.DEFAULT_CIPHERS.split(":").filter((c) => !c.startsWith("TLS_")).join(":")

// Node takes TLS 1.3 suites and the TLS 1.2 list in one string, and a string with only one of the
// two switches the other protocol off: so whichever the context leaves unset keeps Node's default.
const cipherOption = (state: SslContextT.State): { readonly ciphers: string } => {
  const list = state.ciphers ?? (state.protocol.legacy ? "DEFAULT" : defaultList)
  // TLS 1.0/1.1 sign with SHA-1, which OpenSSL 3 only allows at security level 0. Otherwise
  // security level 2 (112-bit keys: RSA 2048, P-224 and up), the `openssl` command's default on
  // Debian and Ubuntu, unless the cipher list names a level itself: Node's OpenSSL is built at
  // level 1, where an RSA-1024 server certificate verifies that `openssl s_client` refuses.
  const level = state.protocol.legacy ? "@SECLEVEL=0" : /@SECLEVEL=/i.test(list) ? "" : "@SECLEVEL=2"
  return { ciphers: `${state.cipherSuites ?? defaultSuites}:${list}${level}` }
}

/** The compiled form of a context, rebuilt only when the context changed. @internal */
export const compile = (context: SslContextT.SslContext): Effect.Effect<Compiled, SslError.InvalidArgumentError> =>
  Effect.suspend(() => {
    const result = compileNow(context)
    return result instanceof SslError.InvalidArgumentError ? Effect.fail(result) : Effect.succeed(result)
  })

/** `compile` as a plain call, for code that is already inside an Effect step. @internal */
export const compileNow = (context: SslContextT.SslContext): Compiled | SslError.InvalidArgumentError => {
  const cached = compiled.get(context)
  if (cached !== undefined && cached.version === context.state.version) return cached
  try {
    return build(context)
  } catch (error) {
    return contextFailure(error)
  }
}

/** The native context for an SslContext (compile's, for callers that need no more). @internal */
export const secureContextFor = (
  context: SslContextT.SslContext
): Effect.Effect<Tls.SecureContext, SslError.InvalidArgumentError> =>
  Effect.map(compile(context), (c) => c.secureContext)

const build = (context: SslContextT.SslContext): Compiled => {
  const state = context.state
  const roots = state.roots.map((c) => c.pem)
  // Node names every `ca` certificate in a server's certificate request and has no separate
  // list, so suggested CAs must join the trust store to be named; verification then refuses
  // client chains that end at one of them rather than at a loaded root.
  const fingerprint = (c: SslContextT.Certificate) => new Crypto.X509Certificate(c.der).fingerprint256
  const rootFingerprints = new Set(state.roots.map(fingerprint))
  const suggested = context.kind === "server"
    ? state.suggestedCas.filter((c) => !rootFingerprints.has(fingerprint(c))).map((c) => c.pem)
    : []
  // A context that does not use the platform's roots trusts exactly the loaded ones (none
  // loaded: nothing), never Node's default store.
  const ca = !state.useDefaultTrust
    ? [...roots, ...suggested]
    : roots.length === 0
    ? undefined
    : [...Tls.rootCertificates, ...roots]
  const secureContext = Tls.createSecureContext({
    minVersion: state.protocol.minVersion,
    maxVersion: state.protocol.maxVersion,
    ...cipherOption(state),
    ...identityOptions(state),
    ...(ca !== undefined ? { ca } : {}),
    ...(context.kind === "server"
      ? {
        // DHE suites work with no other setup, as OpenSSL's own servers do: without parameters
        // Node leaves them out and a client that offers only DHE gets a handshake failure.
        dhparam: "auto",
        // OpenSSL refuses to resume a session on a server that asks for client certificates
        // unless a session id context is set (tls.Server sets one; a bare TLSSocket does not):
        // TLS 1.2 clients that cache sessions would fail every second handshake. A fresh one
        // per build also stops sessions made under older settings (roots, verify) resuming.
        sessionIdContext: Crypto.randomBytes(16).toString("hex")
      }
      : {})
  })
  const result: Compiled = {
    version: state.version,
    secureContext,
    anchors: suggested.length > 0 ? rootFingerprints : undefined
  }
  compiled.set(context, result)
  return result
}

/** Whether node:tls is usable here (it is missing from Node builds without OpenSSL). @internal */
export const probe = (): Option.Option<string> => {
  try {
    Tls.createSecureContext({})
    void Protocol.maxClientProtocol
    return Option.none()
  } catch (error) {
    return Option.some(error instanceof Error ? error.message : String(error))
  }
}

/** OpenSSL's own verdict on a cipher string, for SslContext.CipherValidator. @internal */
export const validateCiphers = (kind: "ciphers" | "cipherSuites", value: string): string | undefined => {
  if (kind === "cipherSuites" && value.split(":").some((suite) => !suite.startsWith("TLS_"))) {
    return "TLS 1.3 suites are named TLS_…, e.g. TLS_AES_256_GCM_SHA384 (use setCiphers for TLS 1.2 lists)"
  }
  try {
    Tls.createSecureContext({ ciphers: value })
    return undefined
  } catch (error) {
    return `OpenSSL rejects it (${error instanceof Error ? error.message : String(error)})`
  }
}
