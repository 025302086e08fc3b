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
import type * as Tls from "node:tls"
import * as Errors from "./errors.js"
import { restorePeerCertificate, skipDetailedPeerCertificate } from "./workarounds/detailedPeerCertificate.js"
import { certificateMatches, parsedCertificate } from "./x509.js"

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
 * What node:tls saw of the server's identity: it calls `check` only when OpenSSL verified the
 * chain and the session was not resumed. The host name is checked by OpenSSL
 * (`X509Certificate.checkHost` / `checkIP`) on the certificate's DER; the chain is kept only when
 * pins need it (workarounds/detailedPeerCertificate.ts says why the chain is not asked for
 * otherwise).
 *
 * @internal
 */
export class ServerIdentity {
  /** the socket of the handshake, until its verdict is in */
  socket: Tls.TLSSocket | undefined = undefined
  /** whether node:tls called `check` */
  checked = false
  /** the server's chain as node:tls gave it, when pins need it */
  certificate: Tls.PeerCertificate | undefined = undefined
  /** the server's certificate (DER), read in `check` */
  der: Buffer | undefined = undefined
  /** why the certificate is not for the host name, when it is not */
  hostError: string | undefined = undefined
  // (a shared function bound to this identity: node:tls keeps it, in its connect options, as long
  // as the socket; a bound function is smaller than a closure and its context)
  readonly check: (hostname: string, certificate: Tls.PeerCertificate) => Error | undefined = check.bind(this)

  /**
   * `hostname`: the name to check the certificate against (undefined: none), the one the user
   * gave. node:tls hands `check` a name of its own, which is "localhost" when it has none (an
   * empty host name): it is not the one checked.
   */
  constructor(readonly hostname: string | undefined, readonly needsChain: boolean) {}

  /** Called once the socket exists: node:tls asks for no chain when none is needed. */
  watch(socket: Tls.TLSSocket): void {
    this.socket = socket
    if (!this.needsChain) skipDetailedPeerCertificate(socket)
  }
}

function check(this: ServerIdentity, _hostname: string, certificate: Tls.PeerCertificate): Error | undefined {
  this.checked = true
  if (this.needsChain) {
    this.certificate = presented(certificate)
    this.der = this.certificate?.raw
  } else if (this.socket !== undefined) {
    restorePeerCertificate(this.socket)
    this.der = presented(this.socket.getPeerCertificate(false))?.raw
  }
  this.hostError = this.hostname !== undefined ? hostMismatch(this.der, this.hostname) : undefined
  return this.hostError === undefined ? undefined : new Error(this.hostError)
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
  const checked = identity.checked
  const chainError = checked ? undefined : nativeVerifyError(socket)
  // node:tls read the certificate (and the chain pins need) for its call of `check` when the
  // chain verified; otherwise they are asked for here (verification off or failing: not the
  // common path).
  const chain = !identity.needsChain ? undefined : checked
    ? identity.certificate
    : presented(socket.getPeerCertificate(true))
  const der = checked
    ? identity.der
    : identity.needsChain
    ? chain?.raw
    : presented(socket.getPeerCertificate(false))?.raw
  const peerDer = der === undefined ? undefined : derOf(der)
  const required = state.verify || (state.tryVerify && peerDer !== undefined)
  if (required) {
    if (chainError !== undefined) return Errors.verifyError("client", peer, chainError.code, chainError.message)
    if (state.verifyHostname) {
      if (hostname === undefined) return missingHostname()
      if (identity.hostError !== undefined) {
        return Errors.verifyError("client", peer, "ERR_TLS_CERT_ALTNAME_INVALID", identity.hostError)
      }
    }
    const pinFailure = checkPins(state, chain, "client", peer)
    if (pinFailure !== undefined) return pinFailure
    return { verified: peerDer !== undefined, peerDer }
  }
  const pinFailure = checkPins(state, chain, "client", peer)
  if (pinFailure !== undefined) return pinFailure
  // Chain verification is off. A host-name check still asked for is made now, on whatever
  // certificate came (Racket 9.3: "certificate not valid for hostname"); without a host name
  // there is nothing to check.
  if (state.verifyHostname && hostname !== undefined) {
    const mismatch = checked ? identity.hostError : hostMismatch(der, hostname)
    if (mismatch !== undefined) return Errors.verifyError("client", peer, "ERR_TLS_CERT_ALTNAME_INVALID", mismatch)
    return { verified: chainError === undefined && peerDer !== undefined, peerDer }
  }
  return { verified: false, peerDer }
}

// OpenSSL's host and IP matching, as `Ssl.checkHostname` does it.
const hostMismatch = (raw: Buffer | undefined, hostname: string): string | undefined => {
  if (raw === undefined) return "the server sent no certificate"
  const x509 = parsedCertificate(raw)
  return certificateMatches(x509, hostname)
    ? undefined
    : `the certificate is for ${x509.subjectAltName ?? x509.subject}, not ${hostname}`
}

// node:tls gives an empty object when the peer sent no certificate.
function presented(certificate: Tls.DetailedPeerCertificate | undefined): Tls.DetailedPeerCertificate | undefined
function presented(certificate: Tls.PeerCertificate | undefined): Tls.PeerCertificate | undefined
function presented(certificate: Tls.PeerCertificate | undefined): Tls.PeerCertificate | undefined {
  return certificate?.raw === undefined ? undefined : certificate
}

// The peer's chain as node:tls completes it from the trust store: the certificates the peer sent,
// then their issuers up to the anchor OpenSSL verified the chain against.
const chainOf = (certificate: Tls.PeerCertificate | undefined): Array<Tls.PeerCertificate> => {
  const chain: Array<Tls.PeerCertificate> = []
  let cert = certificate as Tls.DetailedPeerCertificate | undefined
  for (let depth = 0; cert?.raw !== undefined && depth < 32; depth++) {
    chain.push(cert)
    const issuer: Tls.DetailedPeerCertificate | undefined = cert.issuerCertificate
    if (issuer === undefined || issuer === cert || issuer.fingerprint256 === cert.fingerprint256) break
    cert = issuer
  }
  return chain
}

// The fingerprint of the last certificate of the chain: its anchor.
const chainAnchor = (certificate: Tls.PeerCertificate | undefined): string =>
  chainOf(certificate).at(-1)?.fingerprint256 ?? ""

/** The SPKI SHA-256 pin of a certificate, base64 (what `PeerCertificate.spkiSha256` says). @internal */
export const spkiPin = (der: Uint8Array): string =>
  Crypto.createHash("sha256").update(parsedCertificate(der).publicKey.export({ type: "spki", format: "der" }))
    .digest("base64")

const checkPins = (
  state: SslContextT.State,
  certificate: Tls.PeerCertificate | undefined,
  side: "client" | "server",
  peer: string | undefined
): SslError.VerifyError | undefined => {
  const pins = state.pinnedPublicKeys
  if (pins.length === 0) return undefined
  const chain = chainOf(certificate)
  if (chain.some((cert) => pins.includes(spkiPin(cert.raw)))) return undefined
  return Errors.verifyError(
    side,
    peer,
    "PIN_MISMATCH",
    chain.length === 0
      ? "the peer sent no certificate to check the pinned public keys against"
      : `none of the ${chain.length} certificates of the chain has a pinned public key`
  )
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
  // The chain only where something needs it (it costs a walk of the chain in C++ and objects
  // for each certificate); the certificate alone otherwise, as DER: `getPeerCertificate(false)`
  // costs 31 µs where `getPeerX509Certificate()` costs 117 (it parses the certificate again).
  const needsChain = anchors !== undefined || state.pinnedPublicKeys.length > 0
  const certificate = presented(socket.getPeerCertificate(needsChain))
  const raw = certificate?.raw
  const peerDer = raw === undefined ? undefined : derOf(raw)
  if (state.verify || peerDer !== undefined) {
    const native = nativeVerifyError(socket)
    if (native !== undefined) return Errors.verifyError("server", peer, native.code, native.message)
    if (anchors !== undefined && !anchors.has(chainAnchor(certificate))) {
      return Errors.verifyError(
        "server",
        peer,
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        "the client's chain ends at a suggested CA that is not a trusted root"
      )
    }
    const pinFailure = checkPins(state, certificate, "server", peer)
    if (pinFailure !== undefined) return pinFailure
  }
  return { verified: peerDer !== undefined, peerDer }
}
