/**
 * node:tls's client asks for the server's whole chain as JS objects
 * (`getPeerCertificate(true)`: every certificate's fingerprints, public key and names, and the
 * issuers up to the trust anchor) on every fresh handshake whose chain verified, only to hand it
 * to `checkServerIdentity`. That costs about 0.15 ms of CPU per handshake, a tenth of a client's
 * whole handshake, and nothing in its options turns it off. A client that checks the host name
 * with OpenSSL on the certificate's DER (as `verify.ts` does) needs none of it: until the
 * handshake's verdict is in, the socket answers that call with an empty object.
 *
 * `getPeerX509Certificate()` would be cheaper still, but Node 20 hands the peer's certificate out
 * only once through it: afterwards `getPeerCertificate` returns nothing on that socket
 * (Verification.test.ts pins this), for whatever reads the socket after us. The DER therefore
 * comes from `getPeerCertificate(false)`, which leaves it.
 *
 * @internal
 */
import * as Tls from "node:tls"

const answered: Tls.PeerCertificate = Object.freeze({}) as Tls.PeerCertificate
function skipped(): Tls.PeerCertificate {
  return answered
}

/** Until `restore`, `socket.getPeerCertificate` returns an empty object. @internal */
export const skipDetailedPeerCertificate = (socket: Tls.TLSSocket): void => {
  Object.defineProperty(socket, "getPeerCertificate", { value: skipped, configurable: true, writable: true })
}

const own = Tls.TLSSocket.prototype.getPeerCertificate

/**
 * Gives `socket` back its own `getPeerCertificate`. By assignment, not `delete`: deleting a
 * property other than the last one added turns the socket's properties into a dictionary, 2.6 KiB
 * more for the connection's life, and a client's ports add theirs before its handshake ends.
 *
 * @internal
 */
export const restorePeerCertificate = (socket: Tls.TLSSocket): void => {
  if (socket.getPeerCertificate === skipped) socket.getPeerCertificate = own
}
