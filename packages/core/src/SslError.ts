/**
 * The typed failures of effect-ssl. Every failure is a tagged class, so `Effect.catchTag` works,
 * with the fields a caller can act on and a `message` a person can read. Every class is also a
 * `Schema` (`Schema.TaggedError`), so an error crosses a process boundary typed: declare it as an
 * `@effect/rpc` procedure's `error`, or encode it with `Schema.encode`. `cause` is encoded as
 * `Schema.Defect` does it (an `Error` as its name and message), so a decoded error's `message` is
 * the one the sender saw.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-ssl/core/SslError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

// OpenSSL's error strings name its source files and lines; a person needs only the reason:
// "80…:error:0A0000C7:SSL routines:tls_process_client_certificate:peer did not return a certificate:../deps/…"
const opensslReason = /:error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+):/

const describe = (cause: unknown): string => {
  const text = cause instanceof Error ? cause.message : typeof cause === "string" ? cause : ""
  const openssl = opensslReason.exec(text)
  return (openssl === null ? text : openssl[1]!).split("\n")[0]!.trim()
}

const suffix = (cause: unknown): string => {
  const text = describe(cause)
  return text === "" ? "" : ` (${text})`
}

// effect-ssl builds these errors itself, from fields it controls, and some on hot paths (a read at
// end of input): the constructor's schema check would cost about six times the construction.
// Decoding (an error received over RPC) still checks; `new X(props, false)` asks for the check.
const unchecked = <C extends new(...args: Array<any>) => any>(Base: C): C =>
  class extends Base {
    constructor(...args: Array<any>) {
      super(args[0], args[1] ?? true)
    }
  }

// The underlying error: kept as it is in the field, encoded as its name and message.
const cause = Schema.optional(Schema.Defect)
const side = Schema.Literal("client", "server")

// A reason's schema is the keys of its text table, so a reason cannot be added without a text.
const reasons = <A extends string>(texts: Record<A, string>): Schema.Schema<A> =>
  Schema.Literal(...(Object.keys(texts) as [A, ...Array<A>]))

/**
 * TLS cannot be used in this runtime: the platform's TLS support did not load.
 *
 * @since 0.1.0
 * @category errors
 */
export class SslUnavailableError extends unchecked(
  Schema.TaggedError<SslUnavailableError>()("SslUnavailableError", {
    reason: Schema.String
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `TLS is not available in this runtime: ${this.reason}`
  }
}

/**
 * A protocol was asked for that this runtime cannot speak (SSL 2 and SSL 3 are gone from OpenSSL 3).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedProtocolError extends unchecked(
  Schema.TaggedError<UnsupportedProtocolError>()("UnsupportedProtocolError", {
    protocol: Schema.String,
    reason: Schema.String
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Protocol "${this.protocol}" is not supported: ${this.reason}`
  }
}

/**
 * An argument was out of range or of the wrong shape; `argument` names it.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgumentError extends unchecked(
  Schema.TaggedError<InvalidArgumentError>()("InvalidArgumentError", {
    argument: Schema.String,
    value: Schema.Unknown,
    reason: Schema.String
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    let shown: string
    try {
      shown = typeof this.value === "string" ? JSON.stringify(this.value) : String(this.value)
    } catch {
      shown = "?"
    }
    return `Invalid ${this.argument} ${shown}: ${this.reason}`
  }
}

/**
 * Why a file could not be read: shared by certificate and key loading.
 *
 * @since 0.1.0
 * @category models
 */
export type FileReason =
  | "NotFound"
  | "PermissionDenied"
  | "IsDirectory"
  | "NotRegularFile" // a FIFO, a device, a socket: refused before it is opened
  | "TooLarge" // over 16 MiB: no certificate, key or trust bundle is that large
  | "ReadFailed"
  | "Empty"

/**
 * @since 0.1.0
 * @category errors
 */
export type CertificateLoadReason =
  | FileReason
  | "NoCertificate" // the file holds PEM, but no CERTIFICATE block (a key, say)
  | "Malformed" // not PEM at all, or a block that does not parse as a certificate
  | "KeyMismatch" // setIdentity: the chain's leaf does not belong to the key given with it
  | "Unavailable" // the platform has no crypto library to parse it with
  | "Sealed"

const fileReasonText: Record<FileReason, string> = {
  NotFound: "the file does not exist",
  PermissionDenied: "permission denied",
  IsDirectory: "it is a directory, not a file",
  NotRegularFile: "it is not a regular file (a FIFO, a device or a socket), so it was not opened",
  TooLarge: "the file is larger than 16 MiB",
  ReadFailed: "the file could not be read",
  Empty: "the file is empty"
}

const certificateReasonText: Record<CertificateLoadReason, string> = {
  ...fileReasonText,
  NoCertificate: "no PEM CERTIFICATE block in it",
  Malformed: "not a valid PEM certificate",
  KeyMismatch: "the certificate does not match the private key given with it",
  Unavailable: "this runtime has no crypto library to parse certificates with",
  Sealed: "the context is sealed; no further changes are allowed"
}

/**
 * A certificate file (or in-memory PEM) could not be loaded; `path` is the file, or `"<memory>"`.
 *
 * @since 0.1.0
 * @category errors
 */
export class CertificateLoadError extends unchecked(
  Schema.TaggedError<CertificateLoadError>()("CertificateLoadError", {
    path: Schema.String,
    reason: reasons(certificateReasonText),
    cause
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Cannot load certificates from ${this.path}: ${certificateReasonText[this.reason]}${suffix(this.cause)}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type PrivateKeyLoadReason =
  | FileReason
  | "NoKey" // no private key in the file
  | "NoRsaKey" // `rsa: true` and the file holds keys, none of them RSA
  | "Malformed" // not PEM/DER, or a block that does not parse as a key
  | "Encrypted" // a passphrase-protected key, and no passphrase given
  | "BadPassphrase" // the passphrase given does not decrypt it
  | "Unsupported" // a format or cipher this platform does not read (RC2-encrypted PKCS#12 on OpenSSL 3)
  | "KeyMismatch" // the key does not belong to the loaded certificate
  | "Unavailable" // the platform has no crypto library to parse it with
  | "Sealed"

const keyReasonText: Record<PrivateKeyLoadReason, string> = {
  ...fileReasonText,
  NoKey: "no private key in it",
  NoRsaKey: "no RSA private key in it (pass { rsa: false } to take the first key of any type)",
  Malformed: "not a valid private key",
  Encrypted: "it is encrypted with a passphrase; pass { passphrase }",
  BadPassphrase: "the passphrase does not decrypt it",
  Unsupported:
    "it is encrypted with a cipher this platform's OpenSSL does not read (RC2 and DES need its legacy provider): re-encrypt it with AES (a key: openssl pkcs8 -topk8 -v2 aes-256-cbc; a PKCS#12 file: openssl pkcs12 -export -certpbe AES-256-CBC -keypbe AES-256-CBC)",
  KeyMismatch: "the key does not match the loaded certificate",
  Unavailable: "this runtime has no crypto library to parse keys with",
  Sealed: "the context is sealed; no further changes are allowed"
}

/**
 * A private key file (or in-memory key) could not be loaded; `path` is the file, or `"<memory>"`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PrivateKeyLoadError extends unchecked(
  Schema.TaggedError<PrivateKeyLoadError>()("PrivateKeyLoadError", {
    path: Schema.String,
    reason: reasons(keyReasonText),
    cause
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Cannot load a private key from ${this.path}: ${keyReasonText[this.reason]}${suffix(this.cause)}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type ConnectReason = "Refused" | "UnknownHost" | "Unreachable" | "TimedOut" | "Reset" | "Other"

const connectReasonText: Record<ConnectReason, string> = {
  Refused: "connection refused (is anything listening there?)",
  UnknownHost: "unknown host name",
  Unreachable: "host or network unreachable",
  TimedOut: "connection timed out",
  Reset: "connection reset by peer",
  Other: "connection failed"
}

/**
 * A TCP connection could not be made.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectError extends unchecked(
  Schema.TaggedError<ConnectError>()("ConnectError", {
    hostname: Schema.String,
    port: Schema.Number,
    reason: reasons(connectReasonText),
    code: Schema.optional(Schema.String),
    cause
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Cannot connect to ${this.hostname}:${this.port}: ${connectReasonText[this.reason]}${suffix(this.cause)}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type ListenReason = "AddressInUse" | "PermissionDenied" | "AddressNotAvailable" | "Closed" | "Other"

const listenReasonText: Record<ListenReason, string> = {
  AddressInUse: "the address is already in use",
  PermissionDenied: "permission denied (ports below 1024 need privileges)",
  AddressNotAvailable: "the address is not available on this machine",
  Closed: "the listener is closed",
  Other: "listen failed"
}

/**
 * A listening socket could not be opened.
 *
 * @since 0.1.0
 * @category errors
 */
export class ListenError extends unchecked(
  Schema.TaggedError<ListenError>()("ListenError", {
    hostname: Schema.UndefinedOr(Schema.String),
    port: Schema.Number,
    reason: reasons(listenReasonText),
    code: Schema.optional(Schema.String),
    cause
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Cannot listen on ${this.hostname ?? "*"}:${this.port}: ${listenReasonText[this.reason]}${
      suffix(this.cause)
    }`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type HandshakeReason =
  | "Timeout" // the peer did not finish its handshake within Ssl.HandshakeTimeout
  | "NotTls" // the peer answered with something that is not TLS
  | "ProtocolVersion" // no protocol version in common
  | "NoSharedCipher" // no cipher suite in common (a server without a certificate, say)
  | "CertificateRequired" // the server requires a client certificate and none was sent
  | "AlertReceived" // the peer aborted the handshake with a TLS alert
  | "PeerClosed" // the peer closed the connection during the handshake
  | "Reset" // the connection was reset during the handshake
  | "NoApplicationProtocol" // ALPN: no protocol in common and the server insists
  | "Other"

const handshakeReasonText: Record<HandshakeReason, string> = {
  Timeout: "the peer did not complete the handshake in time",
  NotTls: "the peer does not speak TLS",
  ProtocolVersion: "no TLS version in common",
  NoSharedCipher: "no cipher suite in common (does the server have a certificate and key loaded?)",
  CertificateRequired: "the server requires a client certificate",
  AlertReceived: "the peer sent a TLS alert",
  PeerClosed: "the peer closed the connection",
  Reset: "the connection was reset",
  NoApplicationProtocol: "no application protocol (ALPN) in common",
  Other: "handshake failed"
}

/**
 * The TLS handshake failed for a reason other than certificate verification.
 *
 * @since 0.1.0
 * @category errors
 */
export class HandshakeError extends unchecked(
  Schema.TaggedError<HandshakeError>()("HandshakeError", {
    reason: reasons(handshakeReasonText),
    side,
    peer: Schema.optional(Schema.String),
    code: Schema.optional(Schema.String),
    cause
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    const who = this.peer === undefined ? "" : ` with ${this.peer}`
    return `TLS handshake${who} failed (${this.side} side): ${handshakeReasonText[this.reason]}${suffix(this.cause)}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type VerifyReason =
  | "Expired"
  | "NotYetValid"
  | "HostnameMismatch"
  | "SelfSigned"
  | "UnknownIssuer"
  | "InvalidCa"
  | "WeakKey"
  | "NoPeerCertificate"
  | "PinMismatch"
  | "Other"

const verifyReasonText: Record<VerifyReason, string> = {
  Expired: "the certificate has expired",
  NotYetValid: "the certificate is not yet valid",
  HostnameMismatch: "the certificate is not valid for this host name",
  SelfSigned: "the certificate is self-signed and not trusted",
  UnknownIssuer: "the certificate's issuer is not trusted (load its root, or the missing intermediate)",
  InvalidCa: "a certificate in the chain is not allowed to act as a CA",
  WeakKey: "the certificate's key is too weak",
  NoPeerCertificate: "the peer sent no certificate",
  PinMismatch: "no certificate of the chain has a pinned public key",
  Other: "verification failed"
}

/**
 * The peer's certificate did not verify; `reason` says why and `code` is OpenSSL's name for it.
 *
 * @since 0.1.0
 * @category errors
 */
export class VerifyError extends unchecked(
  Schema.TaggedError<VerifyError>()("VerifyError", {
    reason: reasons(verifyReasonText),
    side,
    peer: Schema.optional(Schema.String),
    code: Schema.optional(Schema.String),
    cause
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    const who = this.peer === undefined ? "the peer" : this.peer
    return `Cannot verify ${who}'s certificate: ${verifyReasonText[this.reason]}${suffix(this.cause)}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type IoReason =
  | "UnexpectedEof" // readExactly: the stream ended first
  | "TruncatedEof" // the peer closed the transport without TLS close_notify
  | "Reset" // the connection was reset
  | "Closed" // the port was already closed
  | "BrokenPipe" // writing to a peer that no longer reads
  | "Protocol" // a TLS record error after the handshake
  | "Other"

const ioReasonText: Record<IoReason, string> = {
  UnexpectedEof: "the input ended before the requested bytes arrived",
  TruncatedEof: "the peer closed the connection without a TLS close_notify (the data may be truncated)",
  Reset: "the connection was reset by the peer",
  Closed: "the port is closed",
  BrokenPipe: "the peer is no longer reading",
  Protocol: "TLS protocol error",
  Other: "I/O error"
}

/**
 * Reading, writing or closing a port failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class IoError extends unchecked(
  Schema.TaggedError<IoError>()("IoError", {
    operation: Schema.Literal("read", "write", "flush", "close"),
    reason: reasons(ioReasonText),
    code: Schema.optional(Schema.String),
    cause
  })
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `${this.operation} failed: ${ioReasonText[this.reason]}${suffix(this.cause)}`
  }
}

/**
 * Every failure effect-ssl reports.
 *
 * @since 0.1.0
 * @category models
 */
export type SslError =
  | SslUnavailableError
  | UnsupportedProtocolError
  | InvalidArgumentError
  | CertificateLoadError
  | PrivateKeyLoadError
  | ConnectError
  | ListenError
  | HandshakeError
  | VerifyError
  | IoError

/**
 * The schema of every failure effect-ssl reports (the union of the classes), for declaring that an
 * `@effect/rpc` procedure or a message may fail with any of them.
 *
 * @example
 * ```ts
 * import { Rpc } from "@effect/rpc"
 * import { Schema } from "effect"
 * import { SslError } from "@effect-ssl/core"
 *
 * const Fetch = Rpc.make("Fetch", { payload: { host: Schema.String }, error: SslError.SslError })
 * ```
 *
 * @since 0.2.0
 * @category schemas
 */
export const SslError: Schema.Union<[
  typeof SslUnavailableError,
  typeof UnsupportedProtocolError,
  typeof InvalidArgumentError,
  typeof CertificateLoadError,
  typeof PrivateKeyLoadError,
  typeof ConnectError,
  typeof ListenError,
  typeof HandshakeError,
  typeof VerifyError,
  typeof IoError
]> = Schema.Union(
  SslUnavailableError,
  UnsupportedProtocolError,
  InvalidArgumentError,
  CertificateLoadError,
  PrivateKeyLoadError,
  ConnectError,
  ListenError,
  HandshakeError,
  VerifyError,
  IoError
)

/**
 * True for every effect-ssl failure.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isSslError = (u: unknown): u is SslError => Predicate.hasProperty(u, TypeId)
