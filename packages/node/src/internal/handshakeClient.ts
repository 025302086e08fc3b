/**
 * The client side of a handshake: over a TCP connection node:tls makes itself (TLS on the
 * socket's native handle, the default), or over a JS stream (truncation detection, `Ssl.wrap`).
 *
 * @internal
 */
import type { SslContext as SslContextT } from "@effect-ssl/core"
import { SslError } from "@effect-ssl/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Net from "node:net"
import type * as NodeStream from "node:stream"
import * as Tls from "node:tls"
import { Groundwork, TlsConnection } from "./connection.js"
import * as Errors from "./errors.js"
import { handshake, releasedWithScope, timeoutError } from "./handshake.js"
import { type EndWatch, SocketFeed } from "./jsStreamTransport.js"
import { keyLogger } from "./keyLog.js"
import type { Compiled } from "./secureContext.js"
import * as SessionCache from "./sessionCache.js"
import { ignore, isIp, stripBrackets } from "./tcp.js"
import { clientVerdict, ServerIdentity } from "./verify.js"
import { restorePeerCertificate } from "./workarounds/detailedPeerCertificate.js"
import { setSessionLater, setsSessionLater } from "./workarounds/sessionParsedTwice.js"

/** @internal */
export interface ClientSpec {
  readonly context: SslContextT.SslContext
  readonly compiled: Compiled
  /** the host name to send as SNI and to verify, as the user gave it */
  readonly hostname: string | undefined
  /** the peer as error messages name it */
  readonly peer: string | undefined
  readonly shutdownOnClose: boolean
  readonly onBothClosed?: (() => void) | undefined
  readonly timeout: Duration.Duration
}

/** @internal */
export type ClientTransport =
  /** node:tls connects the TCP socket itself and runs TLS on its native handle */
  | { readonly kind: "tcp"; readonly port: number }
  | {
    readonly kind: "stream"
    readonly stream: NodeStream.Duplex
    /** the TCP socket under the stream, if any: addresses are read from it */
    readonly addressed: Net.Socket | undefined
    /** tells a close_notify from a bare end of the stream (truncation detection) */
    readonly endWatch: EndWatch | undefined
    /** the port for the session cache's key */
    readonly port: number | undefined
  }

/** The TLS handshake as a client; the connection is released when the scope ends. @internal */
export const clientHandshake = (
  spec: ClientSpec,
  transport: ClientTransport
): Effect.Effect<TlsConnection, SslError.SslError, Scope.Scope> => {
  const { context, peer } = spec
  const state = context.state
  const host = spec.hostname === undefined ? undefined : stripBrackets(spec.hostname)
  if (state.verify && state.verifyHostname && host === undefined) {
    // Known before a byte is sent: without a name the server cannot be verified.
    return Effect.fail(
      new SslError.InvalidArgumentError({
        argument: "hostname",
        value: undefined,
        reason: "a host name is needed to verify the server; pass one, or turn verification off"
      })
    )
  }
  return handshake(spec.timeout, (finish) => {
    const servername = host !== undefined && !isIp(host) ? host : undefined
    const port = transport.port
    const key = host === undefined ? undefined : SessionCache.sessionKey(host, port, servername)
    const cached = key === undefined ? undefined : SessionCache.lookup(context, key)
    const identity = new ServerIdentity(state.verifyHostname ? host : undefined, state.pinnedPublicKeys.length > 0)
    const tcp = transport.kind === "tcp"
    const sessionLater = setsSessionLater(tcp)
    const socket = Tls.connect({
      ...(tcp ? { host, port: transport.port, allowHalfOpen: true } : { socket: transport.stream, host }),
      secureContext: spec.compiled.secureContext,
      // Verification is read from the socket once the handshake is done, so that every verdict
      // is a typed error: node:tls must not destroy the socket first.
      rejectUnauthorized: false,
      checkServerIdentity: identity.check,
      ...(servername !== undefined ? { servername } : {}),
      ...(state.alpn.length > 0 ? { ALPNProtocols: [...state.alpn] } : {}),
      ...(cached !== undefined && !sessionLater ? { session: cached.session } : {})
    })
    if (cached !== undefined && sessionLater) setSessionLater(socket, cached.session)
    identity.watch(socket)
    if (state.keyLog !== undefined) socket.on("keylog", keyLogger(state.keyLog))
    if (transport.kind === "stream") transport.endWatch?.attach(socket)
    if (!tcp && transport.stream instanceof SocketFeed) {
      const feed = transport.stream
      socket.once("end", () => feed.hold())
    }
    // Sessions come during the handshake (TLS 1.2) or after it (TLS 1.3 tickets); the verdict
    // they are kept with is known once it is done. A connection that resumes keeps the session it
    // resumed with and listens for no new one (each costs node:tls a serialisation); one that
    // offered a session the server did not take listens from the end of its handshake on.
    let verdict: { readonly verified: boolean; readonly peerDer: Uint8Array | undefined } | undefined
    let pendingSession: Buffer | undefined
    const keep = key === undefined || !state.sessionCache ? undefined : (session: Buffer) => {
      if (verdict === undefined) pendingSession = session
      else SessionCache.store(context, key, { session, ...verdict })
    }
    if (keep !== undefined && cached === undefined) socket.on("session", keep)
    // The connection's ports and addresses: over TCP laid once node:tls has sent the
    // ClientHello (its own 'connect' listener, first, sends it), while the server works on its
    // answer; else at the end of the handshake.
    let groundwork: Groundwork | undefined
    const lay = (): Groundwork =>
      groundwork ??= new Groundwork(socket, "client", transport.kind === "stream" ? transport.addressed : undefined, {
        peer,
        onEnd: transport.kind === "stream" ? transport.endWatch?.onEnd : undefined,
        shutdownOnClose: spec.shutdownOnClose,
        onBothClosed: spec.onBothClosed
      })
    let connected = !tcp
    // Set once the wait is interrupted: the socket is destroyed then and its listeners stay on
    // it, doing nothing.
    let cancelled = false
    const cleanup = () => {
      restorePeerCertificate(socket)
      socket.off("connect", onConnect)
      socket.off("secureConnect", onSecure)
      socket.off("error", onError)
      socket.off("close", onClose)
      socket.off("end", onClose)
    }
    const fail = (error: SslError.SslError) => {
      cleanup()
      socket.on("error", ignore)
      socket.destroy()
      finish(Effect.fail(error))
    }
    const onConnect = () => {
      connected = true
      // Nagle off, as Go does: a handshake's last flight and the first reply must not wait for the
      // peer's delayed ACK (40 ms a round with clients that are not effect-ssl). Set here, once
      // connected: set before, node:tls sets it twice (two system calls), once more as it connects.
      // (The ClientHello, the first segment, is never held back.)
      socket.setNoDelay(true)
      lay()
    }
    const onError = (error: unknown) => {
      if (cancelled) return
      fail(
        connected || transport.kind !== "tcp"
          ? Errors.handshakeError("client", peer, error)
          : Errors.connectError(spec.hostname ?? "", transport.port, error)
      )
    }
    const onClose = () => {
      if (!cancelled) fail(new SslError.HandshakeError({ reason: "PeerClosed", side: "client", peer }))
    }
    const onSecure = () => {
      cleanup()
      const resumed = socket.isSessionReused()
      const outcome = resumed && cached !== undefined
        ? { verified: cached.verified, peerDer: cached.peerDer }
        : clientVerdict(socket, state, host, identity, peer)
      // node:tls keeps its connect options (and so `identity`) as long as the socket: the
      // certificate and its chain (several KiB of strings) must not stay with it.
      identity.certificate = undefined
      identity.socket = undefined
      identity.der = undefined
      if (SslError.isSslError(outcome)) {
        if (key !== undefined) SessionCache.forget(context, key)
        return fail(outcome)
      }
      verdict = outcome
      if (cached !== undefined && !resumed && keep !== undefined) {
        SessionCache.forget(context, key!)
        socket.on("session", keep)
      }
      if (pendingSession !== undefined && key !== undefined) {
        SessionCache.store(context, key, { session: pendingSession, ...outcome })
        pendingSession = undefined
      }
      finish(Effect.succeed(
        new TlsConnection(socket, {
          mode: "connect",
          verified: outcome.verified,
          resumed,
          peerDer: outcome.peerDer,
          ownLeafDer: undefined,
          servername,
          native: tcp
        }, lay())
      ))
    }
    if (tcp) socket.once("connect", onConnect)
    socket.once("secureConnect", onSecure)
    socket.on("error", onError)
    socket.once("close", onClose)
    // A server that half-closes before finishing its handshake never will.
    socket.once("end", onClose)
    return {
      // Interrupted: the socket goes at once. Its listeners stay on it and ignore what comes now
      // (its 'close' among them); taking them off and giving back getPeerCertificate cost about
      // 4 µs before the destroy (about 10), on the path of every interrupted connect, for a
      // socket nothing else holds.
      cancel: () => {
        cancelled = true
        socket.destroy()
      },
      timedOut: () => fail(timeoutError("client", peer, spec.timeout))
    }
  }, releasedWithScope)
}
