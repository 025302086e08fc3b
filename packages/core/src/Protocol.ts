/**
 * TLS protocol choices, the seed's symbols included, resolved to a range of TLS versions.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { InvalidArgumentError, UnsupportedProtocolError } from "./SslError.js"

/**
 * What a context may negotiate. `"auto"` (and the seed's `"sslv2-or-v3"`) negotiate TLS 1.2 or
 * 1.3; `"secure"` too, and marks a client context as the secure preset; `"tls"`/`"tls1"`,
 * `"tls1.1"`, `"tls1.2"`, `"tls1.3"` pin one version. `"sslv2"` and `"sslv3"` are the seed's and
 * always fail: OpenSSL 3 has neither.
 *
 * @since 0.1.0
 * @category models
 */
export type Protocol =
  | "auto"
  | "secure"
  | "tls"
  | "tls1"
  | "tls1.1"
  | "tls1.2"
  | "tls1.3"
  | "sslv2-or-v3"
  | "sslv2"
  | "sslv3"

/**
 * A TLS version as Node and OpenSSL name it.
 *
 * @since 0.1.0
 * @category models
 */
export type TlsVersion = "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3"

/**
 * A protocol resolved to the versions it allows.
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolved {
  readonly protocol: Protocol
  readonly minVersion: TlsVersion
  readonly maxVersion: TlsVersion
  /** TLS 1.0 and 1.1 need OpenSSL security level 0: their signature schemes are below level 1. */
  readonly legacy: boolean
}

const table: Record<Exclude<Protocol, "sslv2" | "sslv3">, Omit<Resolved, "protocol">> = {
  "auto": { minVersion: "TLSv1.2", maxVersion: "TLSv1.3", legacy: false },
  "secure": { minVersion: "TLSv1.2", maxVersion: "TLSv1.3", legacy: false },
  "sslv2-or-v3": { minVersion: "TLSv1.2", maxVersion: "TLSv1.3", legacy: false },
  "tls": { minVersion: "TLSv1", maxVersion: "TLSv1", legacy: true },
  "tls1": { minVersion: "TLSv1", maxVersion: "TLSv1", legacy: true },
  "tls1.1": { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", legacy: true },
  "tls1.2": { minVersion: "TLSv1.2", maxVersion: "TLSv1.2", legacy: false },
  "tls1.3": { minVersion: "TLSv1.3", maxVersion: "TLSv1.3", legacy: false }
}

// Racket's later spellings, accepted so that programs ported from Racket read naturally.
const aliases: Record<string, Protocol> = { tls11: "tls1.1", tls12: "tls1.2", tls13: "tls1.3" }

const unsupported: Record<"sslv2" | "sslv3", string> = {
  sslv2: "SSL 2.0 is insecure and has been removed from OpenSSL (since 1.1.0); use \"auto\"",
  sslv3: "SSL 3.0 is insecure (POODLE) and OpenSSL 3 is built without it; use \"auto\""
}

/**
 * True for the protocol names this module knows (including the unsupported seed ones).
 *
 * @since 0.1.0
 * @category refinements
 */
export const isProtocol = (u: unknown): u is Protocol =>
  typeof u === "string" && (Object.prototype.hasOwnProperty.call(table, u) || u === "sslv2" || u === "sslv3")

/**
 * Resolves a protocol name to its version range.
 *
 * @example
 * ```ts
 * import { Protocol } from "@effect-ssl/core"
 * Protocol.resolve("tls1.2") // succeeds with { minVersion: "TLSv1.2", maxVersion: "TLSv1.2", … }
 * Protocol.resolve("sslv3") // fails with UnsupportedProtocolError
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (
  protocol: string
): Effect.Effect<Resolved, UnsupportedProtocolError | InvalidArgumentError> => {
  const name: string = aliases[protocol] ?? protocol
  if (name === "sslv2" || name === "sslv3") {
    return Effect.fail(new UnsupportedProtocolError({ protocol, reason: unsupported[name] }))
  }
  if (Object.prototype.hasOwnProperty.call(table, name)) {
    const known = name as keyof typeof table
    return Effect.succeed({ protocol: known, ...table[known] })
  }
  return Effect.fail(
    new InvalidArgumentError({
      argument: "protocol",
      value: protocol,
      reason: `expected one of ${[...Object.keys(table), "sslv2", "sslv3"].map((p) => `"${p}"`).join(", ")}`
    })
  )
}

/**
 * The protocols a client context can use in this runtime, weakest first (as Racket lists them).
 *
 * @since 0.1.0
 * @category constants
 */
export const supportedClientProtocols: ReadonlyArray<Protocol> = [
  "secure",
  "auto",
  "tls",
  "tls1.1",
  "tls1.2",
  "tls1.3"
]

/**
 * The protocols a server context can use in this runtime.
 *
 * @since 0.1.0
 * @category constants
 */
export const supportedServerProtocols: ReadonlyArray<Protocol> = supportedClientProtocols

/**
 * The best protocol a client can pin (Racket's `ssl-max-client-protocol`).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxClientProtocol: Protocol = "tls1.3"

/**
 * The best protocol a server can pin (Racket's `ssl-max-server-protocol`).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxServerProtocol: Protocol = "tls1.3"
