/**
 * The window in which a server's handshake waits for the client: once its answer to the
 * ClientHello has gone out, the client has a round trip and its own key exchange and verification
 * to do before its Finished arrives. Work done then (a connection's groundwork, see
 * connection.ts) is off the path from that Finished to the handler's first read, which every
 * sequential client waits out.
 *
 * node:tls has no event for it. Its server handle calls `onhandshakestart` as OpenSSL begins on a
 * ClientHello, inside the read that then writes the answer: an immediate queued from there runs
 * once that read is over and the answer written, before the event loop polls for the client's
 * next flight.
 *
 * @internal
 */
import type * as Tls from "node:tls"

interface ServerHandle {
  onhandshakestart?: ((this: unknown, now: number) => void) | undefined
}

/**
 * Runs `work` once, after `socket` (a server-side TLS socket on a native handle) has answered the
 * ClientHello; `work` must check that the handshake is still under way. On a Node without the hook
 * it never runs, and whoever needs its result makes it at the end of the handshake.
 *
 * @internal
 */
export const afterServerFlight = (socket: Tls.TLSSocket, work: () => void): void => {
  const handle = (socket as unknown as { readonly _handle?: ServerHandle | null })._handle
  const original = handle?.onhandshakestart
  if (handle == null || typeof original !== "function") return
  handle.onhandshakestart = function(now) {
    // node:tls's own back for the rest of the socket's life (it limits renegotiations, which
    // start here too): this one would keep the handshake's closures as long as the socket.
    handle.onhandshakestart = original
    original.call(this, now)
    setImmediate(work)
  }
}
