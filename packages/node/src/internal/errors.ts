/**
 * Node and OpenSSL error codes turned into effect-ssl's typed errors.
 *
 * @internal
 */
import { SslError } from "@effect-ssl/core"

const codeOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** @internal */
export const connectError = (hostname: string, port: number, error: unknown): SslError.ConnectError => {
  const code = codeOf(error)
  const reason: SslError.ConnectReason = code === "ECONNREFUSED"
    ? "Refused"
    : code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NODATA" || code === "EAI_NONAME"
    ? "UnknownHost"
    : code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "EADDRNOTAVAIL"
    ? "Unreachable"
    : code === "ETIMEDOUT"
    ? "TimedOut"
    : code === "ECONNRESET"
    ? "Reset"
    : "Other"
  return new SslError.ConnectError({ hostname, port, reason, code, cause: error })
}

/** @internal */
export const listenError = (hostname: string | undefined, port: number, error: unknown): SslError.ListenError => {
  const code = codeOf(error)
  const reason: SslError.ListenReason = code === "EADDRINUSE"
    ? "AddressInUse"
    : code === "EACCES" || code === "EPERM"
    ? "PermissionDenied"
    : code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN"
    ? "AddressNotAvailable"
    : "Other"
  return new SslError.ListenError({ hostname, port, reason, code, cause: error })
}

const notTlsCodes = new Set([
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "ERR_SSL_PACKET_LENGTH_TOO_LONG",
  "ERR_SSL_HTTP_REQUEST",
  "ERR_SSL_HTTPS_PROXY_REQUEST",
  "ERR_SSL_UNKNOWN_PROTOCOL",
  "ERR_SSL_RECORD_LAYER_FAILURE",
  "ERR_SSL_UNEXPECTED_MESSAGE",
  "ERR_SSL_UNEXPECTED_RECORD",
  "ERR_SSL_RECORD_LENGTH_MISMATCH",
  "ERR_SSL_BAD_PACKET_LENGTH",
  "ERR_SSL_LENGTH_TOO_SHORT",
  "ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC"
])

const versionCodes = new Set([
  "ERR_SSL_UNSUPPORTED_PROTOCOL",
  "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION",
  "ERR_SSL_NO_PROTOCOLS_AVAILABLE",
  "ERR_SSL_VERSION_TOO_LOW",
  "ERR_SSL_VERSION_TOO_HIGH"
])

/** @internal */
export const handshakeReason = (error: unknown): SslError.HandshakeReason => {
  const code = codeOf(error) ?? ""
  if (notTlsCodes.has(code)) return "NotTls"
  if (versionCodes.has(code)) return "ProtocolVersion"
  if (code === "ERR_SSL_NO_SHARED_CIPHER" || code === "ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM") {
    return "NoSharedCipher"
  }
  if (code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" || code === "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED") {
    return "CertificateRequired"
  }
  if (code === "ERR_SSL_NO_APPLICATION_PROTOCOL" || code === "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL") {
    return "NoApplicationProtocol"
  }
  if (code.includes("_ALERT_")) return "AlertReceived"
  if (/disconnected before secure TLS connection/.test(messageOf(error))) return "PeerClosed"
  if (code === "ECONNRESET" || code === "EPIPE") return "Reset"
  return "Other"
}

/** @internal */
export const handshakeError = (
  side: "client" | "server",
  peer: string | undefined,
  error: unknown
): SslError.HandshakeError =>
  new SslError.HandshakeError({ reason: handshakeReason(error), side, peer, code: codeOf(error), cause: error })

const verifyReasons: Record<string, SslError.VerifyReason> = {
  CERT_HAS_EXPIRED: "Expired",
  CERT_NOT_YET_VALID: "NotYetValid",
  DEPTH_ZERO_SELF_SIGNED_CERT: "SelfSigned",
  SELF_SIGNED_CERT_IN_CHAIN: "UnknownIssuer",
  UNABLE_TO_GET_ISSUER_CERT: "UnknownIssuer",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "UnknownIssuer",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "UnknownIssuer",
  INVALID_CA: "InvalidCa",
  INVALID_PURPOSE: "InvalidCa",
  PATH_LENGTH_EXCEEDED: "InvalidCa",
  KEYUSAGE_NO_CERTSIGN: "InvalidCa",
  EE_KEY_TOO_SMALL: "WeakKey",
  CA_KEY_TOO_SMALL: "WeakKey",
  CA_MD_TOO_WEAK: "WeakKey",
  ERR_TLS_CERT_ALTNAME_INVALID: "HostnameMismatch",
  PIN_MISMATCH: "PinMismatch",
  HOSTNAME_MISMATCH: "HostnameMismatch"
}

// Node names only some X.509 verification errors and reports the others as "UNSPECIFIED";
// OpenSSL's own text (X509_verify_cert_error_string) tells these apart.
const unnamedVerifyErrors: Record<string, string> = {
  "EE certificate key too weak": "EE_KEY_TOO_SMALL",
  "CA certificate key too weak": "CA_KEY_TOO_SMALL",
  "CA signature digest algorithm too weak": "CA_MD_TOO_WEAK",
  // A leaf (no keyCertSign) used as a CA: Node reports the last of the chain's errors, this one.
  "key usage does not include certificate signing": "KEYUSAGE_NO_CERTSIGN"
}

/** OpenSSL's name for a verification error, where Node gives none. @internal */
export const verifyCode = (code: string, message: string): string =>
  code === "UNSPECIFIED" ? (unnamedVerifyErrors[message] ?? code) : code

/** @internal */
export const verifyError = (
  side: "client" | "server",
  peer: string | undefined,
  code: string,
  cause?: unknown
): SslError.VerifyError => new SslError.VerifyError({ reason: verifyReasons[code] ?? "Other", side, peer, code, cause })

// Alerts a peer sends only to reject a handshake. In TLS 1.3 a client's handshake is over before
// the server has looked at the client's certificate, so these reach the client on a later read
// or write: they are still the handshake failing, and are reported as such.
const lateHandshakeAlerts = new Set([
  "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
  "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE",
  "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE",
  "ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
  "ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED",
  "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED",
  "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN",
  "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
  "ERR_SSL_TLSV1_ALERT_ACCESS_DENIED",
  "ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR"
])

// node:tls's own errors for a client that asks to renegotiate (refused outright, or beyond its
// limit): the peer broke the protocol as a server runs it, as much as a bad record does.
const renegotiationCodes = new Set(["ERR_TLS_RENEGOTIATION_DISABLED", "ERR_TLS_SESSION_ATTACK"])

/**
 * An error seen reading or writing. `handshake` (TLS ports) lets a handshake rejection that
 * arrives after the handshake completed locally be reported as the HandshakeError it is.
 *
 * @internal
 */
export const ioError = (
  error: unknown,
  operation: "read" | "write",
  handshake?: { readonly side: "client" | "server"; readonly peer: string | undefined }
): SslError.SslError => {
  if (SslError.isSslError(error)) return error
  const code = codeOf(error)
  if (handshake !== undefined && code !== undefined && lateHandshakeAlerts.has(code)) {
    return handshakeError(handshake.side, handshake.peer, error)
  }
  const reason: SslError.IoReason = code === "ECONNRESET"
    ? "Reset"
    : code === "EPIPE" || code === "ERR_STREAM_WRITE_AFTER_END" || code === "ERR_STREAM_DESTROYED"
    ? "BrokenPipe"
    : code !== undefined && (code.startsWith("ERR_SSL_") || renegotiationCodes.has(code))
    ? "Protocol"
    : "Other"
  return new SslError.IoError({ operation, reason, code, cause: error })
}
