/**
 * node:tls parses a session given to `tls.connect` twice: once as the socket is set up and again
 * in `connect` itself (`d2i_SSL_SESSION` each time, the server's certificates included: about
 * 0.17 ms each on the bench's machine, a tenth of a resumed client handshake). A connection that
 * node:tls makes over TCP sends its ClientHello only once connected, so the session can be set
 * once, after `tls.connect` returns, with the socket's own (undocumented, but as old as node:tls)
 * `setSession`. Over a stream node:tls starts the handshake inside `tls.connect`, which must then
 * have it in its options.
 *
 * @internal
 */
import * as Tls from "node:tls"

type SessionSettable = Tls.TLSSocket & { setSession?: (session: Buffer) => void }

const settable = typeof (Tls.TLSSocket.prototype as SessionSettable).setSession === "function"

/** Whether a TCP connection's session can be set after `tls.connect` rather than in its options. @internal */
export const setsSessionLater = (tcp: boolean): boolean => tcp && settable

/** Sets the session to resume on a socket made by `tls.connect` without one. @internal */
export const setSessionLater = (socket: Tls.TLSSocket, session: Buffer): void => {
  ;(socket as SessionSettable).setSession!(session)
}
