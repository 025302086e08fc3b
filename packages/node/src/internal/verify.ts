/**
 * Verification verdicts, as OpenSSL and node:tls reached them during the handshake, turned into
 * typed errors. Nothing is verified twice: the client's chain and host name are OpenSSL's and
 * node:tls's own checks (`checkServerIdentity` is only listened to), the server's the verify
 * result OpenSSL left on the connection.
 *
 * @internal
 */
import type { SslContext as SslContextT } from "@effect-ssl/core"
import { SslError } from "@effect-ssl/core"
import * as Crypto from "node:crypto"
import * as Tls from "node:tls"
import * as Errors from "./errors.js"
import { isIp } from "./tcp.js"

// Node keeps OpenSSL's verdict in the socket's handle; the public API only exposes its code
// (authorizationError), which is "UNSPECIFIED" for every X.509 error Node has no name for (a key
// too weak, say): OpenSSL's text tells those.
const nativeVerifyError = (socket: Tls.TLSSocket): { readonly code: string; readonly message: string } | undefined => {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => { code?: string; message?: string } | null } })
    ._handle
  const error = handle?.verifyError?.()
  if (!error) return undefined
  const message = typeof error.message === "string" ? error.message : ""
  return { code: Errors.verifyCode(error.code ?? "UNKNOWN", message), message }
}

/**
 * What node:tls saw of the server's identity: it calls `check` with the peer's certificate (and
 * its chain) only when OpenSSL verified the chain and the session was not resumed.
 *
 * @internal
 */
export class ServerIdentity {
  certificate: Tls.PeerCertificate | undefined = undefined
  hostError: Error | undefined = undefined
  readonly check: (hostname: string, certificate: Tls.PeerCertificate) => Error | undefined

  constructor(checkHost: boolean) {
    this.check = (hostname, certificate) => {
      this.certificate = certificate
      this.hostError = checkHost ? Tls.checkServerIdentity(hostname, certificate) : undefined
      return this.hostError
    }
  }
}

/** The outcome of a client's verification: what the session reports. @internal */
export interface ClientVerdict {
  readonly verified: boolean
  /** the server's certificate (DER), whenever it sent one */
  readonly peerDer: Uint8Array | undefined
}

const missingHostname = () =>
  new SslError.InvalidArgumentError({
    argument: "hostname",
    value: undefined,
    reason: "a host name is needed to verify the server; pass one, or turn verification off"
  })

// A certificate as a plain Uint8Array over its DER (node:tls hands out Buffers).
const derOf = (raw: Buffer): Uint8Array => new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)

/**
 * The client's verdict on a fresh (not resumed) handshake.
 *
 * @internal
 */
export const clientVerdict = (
  socket: Tls.TLSSocket,
  state: SslContextT.State,
  hostname: string | undefined,
  identity: ServerIdentity,
  peer: string | undefined
): ClientVerdict | SslError.SslError => {
  const chainError = identity.certificate === undefined ? nativeVerifyError(socket) : undefined
  // node:tls fetched the certificate for its own check when the chain verified; otherwise it is
  // asked for here (verification off or failing: not the common path).
  const raw = identity.certificate?.raw ?? socket.getPeerX509Certificate()?.raw
  const peerDer = raw === undefined ? undefined : derOf(raw)
  const required = state.verify || (state.tryVerify && peerDer !== undefined)
  if (required) {
    if (chainError !== undefined) return Errors.verifyError("client", peer, chainError.code, chainError.message)
    if (state.verifyHostname) {
      if (hostname === undefined) return missingHostname()
      if (identity.hostError !== undefined) {
        return Errors.verifyError("client", peer, "ERR_TLS_CERT_ALTNAME_INVALID", identity.hostError.message)
      }
    }
    return { verified: peerDer !== undefined, peerDer }
  }
  // Chain verification is off. A host-name check still asked for is made now, on whatever
  // certificate came (Racket 9.3: "certificate not valid for hostname"); without a host name
  // there is nothing to check.
  if (state.verifyHostname && hostname !== undefined) {
    const mismatch = hostMismatch(raw, hostname)
    if (mismatch !== undefined) return Errors.verifyError("client", peer, "ERR_TLS_CERT_ALTNAME_INVALID", mismatch)
    return { verified: chainError === undefined && peerDer !== undefined, peerDer }
  }
  return { verified: false, peerDer }
}

// OpenSSL's host and IP matching (X509_check_host / X509_check_ip).
const hostMismatch = (raw: Buffer | undefined, hostname: string): string | undefined => {
  if (raw === undefined) return "the server sent no certificate"
  const x509 = new Crypto.X509Certificate(raw)
  const matched = isIp(hostname) ? x509.checkIP(hostname) : x509.checkHost(hostname)
  return matched === undefined ? `the certificate is for ${x509.subjectAltName ?? x509.subject}, not ${hostname}` : undefined
}

// The fingerprint of the last certificate of the peer's chain as Node completes it from the trust
// store: the anchor OpenSSL verified the chain against.
const chainAnchor = (socket: Tls.TLSSocket): string => {
  let cert: Tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true)
  for (let depth = 0; cert !== undefined && depth < 32; depth++) {
    const issuer: Tls.DetailedPeerCertificate | undefined = cert.issuerCertificate
    if (issuer === undefined || issuer === cert || issuer.fingerprint256 === cert.fingerprint256) {
      return cert.fingerprint256 ?? ""
    }
    cert = issuer
  }
  return ""
}

/**
 * The server's verdict on its client, when it asked for a certificate.
 *
 * @internal
 */
export const serverVerdict = (
  socket: Tls.TLSSocket,
  state: SslContextT.State,
  anchors: ReadonlySet<string> | undefined,
  peer: string | undefined
): ClientVerdict | SslError.SslError => {
  if (!state.verify && !state.tryVerify) return { verified: false, peerDer: undefined }
  // Node 20 hands out the peer's certificate once per kind of call: the chain walk first.
  const anchor = anchors !== undefined ? chainAnchor(socket) : undefined
  const raw = socket.getPeerX509Certificate()?.raw
  const peerDer = raw === undefined ? undefined : derOf(raw)
  if (state.verify || peerDer !== undefined) {
    const native = nativeVerifyError(socket)
    if (native !== undefined) return Errors.verifyError("server", peer, native.code, native.message)
    if (anchors !== undefined && !anchors.has(anchor ?? "")) {
      return Errors.verifyError(
        "server",
        peer,
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        "the client's chain ends at a suggested CA that is not a trusted root"
      )
    }
  }
  return { verified: peerDer !== undefined, peerDer }
}
