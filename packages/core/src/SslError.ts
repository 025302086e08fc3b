/**
 * The typed failures of effect-ssl. Every failure is a tagged class, so `Effect.catchTag` works,
 * with the fields a caller can act on and a `message` a person can read.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"

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

/**
 * TLS cannot be used in this runtime: the platform's TLS support did not load.
 *
 * @since 0.1.0
 * @category errors
 */
export class SslUnavailableError extends Data.TaggedError("SslUnavailableError")<{
  readonly reason: string
}> {
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
export class UnsupportedProtocolError extends Data.TaggedError("UnsupportedProtocolError")<{
  readonly protocol: string
  readonly reason: string
}> {
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
export class InvalidArgumentError extends Data.TaggedError("InvalidArgumentError")<{
  readonly argument: string
  readonly value: unknown
  readonly reason: string
}> {
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

/**
 * A certificate file (or in-memory PEM) could not be loaded; `path` is the file, or `"<memory>"`.
 *
 * @since 0.1.0
 * @category errors
 */
export class CertificateLoadError extends Data.TaggedError("CertificateLoadError")<{
  readonly path: string
  readonly reason: CertificateLoadReason
  readonly cause?: unknown
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Cannot load certificates from ${this.path}: ${certificateReasonText[this.reason]}${suffix(this.cause)}`
  }
}

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

/**
 * A private key file (or in-memory key) could not be loaded; `path` is the file, or `"<memory>"`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PrivateKeyLoadError extends Data.TaggedError("PrivateKeyLoadError")<{
  readonly path: string
  readonly reason: PrivateKeyLoadReason
  readonly cause?: unknown
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Cannot load a private key from ${this.path}: ${keyReasonText[this.reason]}${suffix(this.cause)}`
  }
}

const keyReasonText: Record<PrivateKeyLoadReason, string> = {
  ...fileReasonText,
  NoKey: "no private key in it",
  NoRsaKey: "no RSA private key in it (pass { rsa: false } to take the first key of any type)",
  Malformed: "not a valid private key",
  Encrypted: "it is encrypted with a passphrase; pass { passphrase }",
  BadPassphrase: "the passphrase does not decrypt it",
  Unsupported:
    "it is encrypted with a cipher this platform's OpenSSL does not read (RC2 needs the legacy provider: re-export it with AES, e.g. openssl pkcs12 -export -certpbe AES-256-CBC -keypbe AES-256-CBC)",
  KeyMismatch: "the key does not match the loaded certificate",
  Unavailable: "this runtime has no crypto library to parse keys with",
  Sealed: "the context is sealed; no further changes are allowed"
}

/**
 * @since 0.1.0
 * @category errors
 */
export type ConnectReason = "Refused" | "UnknownHost" | "Unreachable" | "TimedOut" | "Reset" | "Other"

/**
 * A TCP connection could not be made.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectError extends Data.TaggedError("ConnectError")<{
  readonly hostname: string
  readonly port: number
  readonly reason: ConnectReason
  readonly code?: string | undefined
  readonly cause?: unknown
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Cannot connect to ${this.hostname}:${this.port}: ${connectReasonText[this.reason]}${suffix(this.cause)}`
  }
}

const connectReasonText: Record<ConnectReason, string> = {
  Refused: "connection refused (is anything listening there?)",
  UnknownHost: "unknown host name",
  Unreachable: "host or network unreachable",
  TimedOut: "connection timed out",
  Reset: "connection reset by peer",
  Other: "connection failed"
}

/**
 * @since 0.1.0
 * @category errors
 */
export type ListenReason = "AddressInUse" | "PermissionDenied" | "AddressNotAvailable" | "Closed" | "Other"

/**
 * A listening socket could not be opened.
 *
 * @since 0.1.0
 * @category errors
 */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly hostname: string | undefined
  readonly port: number
  readonly reason: ListenReason
  readonly code?: string | undefined
  readonly cause?: unknown
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `Cannot listen on ${this.hostname ?? "*"}:${this.port}: ${listenReasonText[this.reason]}${suffix(this.cause)}`
  }
}

const listenReasonText: Record<ListenReason, string> = {
  AddressInUse: "the address is already in use",
  PermissionDenied: "permission denied (ports below 1024 need privileges)",
  AddressNotAvailable: "the address is not available on this machine",
  Closed: "the listener is closed",
  Other: "listen failed"
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

/**
 * The TLS handshake failed for a reason other than certificate verification.
 *
 * @since 0.1.0
 * @category errors
 */
export class HandshakeError extends Data.TaggedError("HandshakeError")<{
  readonly reason: HandshakeReason
  readonly side: "client" | "server"
  readonly peer?: string | undefined
  readonly code?: string | undefined
  readonly cause?: unknown
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    const who = this.peer === undefined ? "" : ` with ${this.peer}`
    return `TLS handshake${who} failed (${this.side} side): ${handshakeReasonText[this.reason]}${suffix(this.cause)}`
  }
}

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

/**
 * The peer's certificate did not verify; `reason` says why and `code` is OpenSSL's name for it.
 *
 * @since 0.1.0
 * @category errors
 */
export class VerifyError extends Data.TaggedError("VerifyError")<{
  readonly reason: VerifyReason
  readonly side: "client" | "server"
  readonly peer?: string | undefined
  readonly code?: string | undefined
  readonly cause?: unknown
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    const who = this.peer === undefined ? "the peer" : this.peer
    return `Cannot verify ${who}'s certificate: ${verifyReasonText[this.reason]}${suffix(this.cause)}`
  }
}

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

/**
 * Reading, writing or closing a port failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class IoError extends Data.TaggedError("IoError")<{
  readonly operation: "read" | "write" | "flush" | "close"
  readonly reason: IoReason
  readonly code?: string | undefined
  readonly cause?: unknown
}> {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  override get message(): string {
    return `${this.operation} failed: ${ioReasonText[this.reason]}${suffix(this.cause)}`
  }
}

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
 * True for every effect-ssl failure.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isSslError = (u: unknown): u is SslError => Predicate.hasProperty(u, TypeId)
