/**
 * The server side of a handshake: TLS on an accepted TCP socket's native handle (the default), or
 * over a JS stream (truncation detection, `Ssl.wrap`). Once it is done the connection is set up
 * as node:tls's own servers do theirs: TLS errors after the handshake reach the connection, and
 * a client's renegotiation is refused.
 *
 * @internal
 */
import type { SslContext as SslContextT } from "@effect-ssl/core"
import { SslError } from "@effect-ssl/core"
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Net from "node:net"
import type * as NodeStream from "node:stream"
import * as Tls from "node:tls"
import { Groundwork, TlsConnection } from "./connection.js"
import * as Errors from "./errors.js"
import { handshake, type Running, timeoutError } from "./handshake.js"
import { afterServerFlight } from "./handshakeIdle.js"
import { type EndWatch, SocketFeed } from "./jsStreamTransport.js"
import { keyLogger } from "./keyLog.js"
import { type Compiled, secureContextFor } from "./secureContext.js"
import { ignore } from "./tcp.js"
import { serverVerdict } from "./verify.js"
import { alpnWire, readAlpnOffer, shouldOfferAlpn, watchAlpnOffer } from "./workarounds/alpnNoMatch.js"

/** @internal */
export interface ServerSpec {
  readonly context: SslContextT.SslContext
  readonly compiled: Compiled
  readonly peer: string | undefined
  readonly shutdownOnClose: boolean
  readonly onBothClosed?: (() => void) | undefined
  readonly timeout: Duration.Duration
  /** runs the server name callback, when the context has one */
  readonly runtime: Runtime.Runtime<never> | undefined
}

/** @internal */
export type ServerTransport =
  /** an accepted TCP socket: TLS on its native handle */
  | { readonly kind: "tcp"; readonly socket: Net.Socket }
  | {
    readonly kind: "stream"
    readonly stream: NodeStream.Duplex
    /** the TCP socket under the stream, if any: its resets and addresses */
    readonly addressed: Net.Socket | undefined
    readonly endWatch: EndWatch | undefined
  }

type Internals = Tls.TLSSocket & {
  _releaseControl(): boolean
  _handle: { setALPNProtocols(wire: Buffer): void } | null
}

/**
 * The TLS handshake as a server; `done` makes the connection someone's (it runs in the same
 * uninterruptible step as the end of the wait). @internal
 */
export const serverHandshake = <B, R>(
  spec: ServerSpec,
  transport: ServerTransport,
  done: (connection: TlsConnection, fiber: Fiber.RuntimeFiber<unknown, unknown>) => Effect.Effect<B, never, R>
): Effect.Effect<B, SslError.SslError, R> =>
  awaitServerHandshake(spec.timeout, () => beginServerHandshake(spec, transport), done)

/**
 * A server handshake under way, which may have begun before anyone waits for it (see
 * `beginServerHandshake`): what it came to is kept until it is waited for.
 *
 * @internal
 */
export interface ServerHandshake extends Running {
  /** `finish` gets the outcome: now if there is one already, else when it comes */
  readonly waitedFor: (finish: (outcome: Effect.Effect<TlsConnection, SslError.SslError>) => void) => void
}

/**
 * Waits for a server handshake, begun now by `begin` or earlier; `done` as in `serverHandshake`.
 * The handshake timeout runs from here: a handshake that began early has had its time in the
 * listener's queue more (two turns of the event loop, unless the accept it was begun for went
 * away: the listener's backlog bounds those, as it bounds connections nobody has taken). @internal
 */
export const awaitServerHandshake = <B, R>(
  timeout: Duration.Duration,
  begin: () => ServerHandshake,
  done: (connection: TlsConnection, fiber: Fiber.RuntimeFiber<unknown, unknown>) => Effect.Effect<B, never, R>
): Effect.Effect<B, SslError.SslError, R> =>
  handshake(timeout, (finish) => {
    const begun = begin()
    begun.waitedFor(finish)
    return begun
  }, done)

/**
 * Begins a server handshake on an accepted connection, with nobody waiting for it yet (a listener
 * begins one as a connection arrives: see tcp.ts). Until it is waited for, its outcome is kept:
 * a failure tears the connection down at once, an established connection keeps what it reads.
 *
 * @internal
 */
export const beginServerHandshake = (spec: ServerSpec, transport: ServerTransport): ServerHandshake => {
  let outcome: Effect.Effect<TlsConnection, SslError.SslError> | undefined
  let waiting: ((outcome: Effect.Effect<TlsConnection, SslError.SslError>) => void) | undefined
  const finish = (result: Effect.Effect<TlsConnection, SslError.SslError>) => {
    if (waiting !== undefined) waiting(result)
    else outcome = result
  }
  const { context, peer } = spec
  const state = context.state
  // The context whose certificate the server presents: this one, unless SNI picked another.
  let served: SslContextT.SslContext = context
  const sni: SniRun = { fiber: undefined, cancelled: false }
  // The TCP socket (native) or the stream node:tls reads.
  const raw: NodeStream.Duplex = transport.kind === "tcp" ? transport.socket : transport.stream
  // A TCP error (a reset) before the handshake is over reaches a server-side TLS socket only as
  // its 'close' (node:tls passes transport errors of an unfinished handshake to a tls.Server,
  // which there is none of): hear it from the transport, so that a reset is told as one.
  const transportErrors = transport.kind === "tcp" || raw instanceof SocketFeed ? raw : undefined
  const watchOffer = state.alpn.length > 0 && state.alpnAllowNoMatch
  let tls: Internals | undefined
  let stopReading: (() => void) | undefined
  // The connection's ports and addresses: over TCP laid while the client works on its next
  // flight, else (or if that did not come first) at the end of the handshake.
  let groundwork: Groundwork | undefined
  const lay = (socket: Tls.TLSSocket): Groundwork =>
    groundwork ??= new Groundwork(socket, "server", transport.kind === "tcp" ? transport.socket : transport.addressed, {
      peer,
      onEnd: transport.kind === "stream" ? transport.endWatch?.onEnd : undefined,
      shutdownOnClose: spec.shutdownOnClose,
      onBothClosed: spec.onBothClosed
    })

  const make = (withAlpn: boolean): Internals => {
    const socket = new Tls.TLSSocket(raw, {
      isServer: true,
      secureContext: spec.compiled.secureContext,
      // try-verify asks for a certificate without requiring one.
      requestCert: state.verify || state.tryVerify,
      rejectUnauthorized: state.verify,
      // (none at all rather than an empty list: node:tls keeps the list, made a Buffer, as long
      // as the socket)
      ...(withAlpn && state.alpn.length > 0 ? { ALPNProtocols: [...state.alpn] } : {}),
      ...(state.serverNameCallback !== undefined && spec.runtime !== undefined
        ? { SNICallback: sniCallback(state.serverNameCallback, spec.runtime, (c) => (served = c), sni) }
        : {})
    }) as Internals
    if (state.keyLog !== undefined) socket.on("keylog", keyLogger(state.keyLog))
    if (raw instanceof SocketFeed) socket.once("end", () => raw.hold())
    if (transport.kind === "stream") transport.endWatch?.attach(socket)
    socket.once("secure", onSecure)
    socket.on("error", onError)
    socket.once("close", onClose)
    // A peer that half-closes before finishing its handshake never will: node:tls reports
    // this (as an error) for clients only, and a server would wait for the handshake timeout.
    socket.once("end", onClose)
    if (transport.kind === "tcp") {
      afterServerFlight(socket, () => {
        // (a failed handshake has destroyed the socket)
        if (!socket.destroyed) lay(socket)
      })
    }
    return socket
  }
  const cleanup = () => {
    if (sni.fiber !== undefined) {
      sni.cancelled = true
      sni.fiber.unsafeInterruptAsFork(sni.fiber.id())
    }
    stopReading?.()
    if (tls !== undefined) {
      tls.off("secure", onSecure)
      tls.off("error", onError)
      tls.off("close", onClose)
      tls.off("end", onClose)
    }
    transportErrors?.off("error", onError)
    if (transport.kind === "tcp") {
      transport.socket.off("close", onClose)
      transport.socket.off("end", onClose)
    }
  }
  const teardown = () => {
    cleanup()
    if (tls !== undefined) {
      tls.on("error", ignore)
      tls.destroy()
    }
    // (A stream's owner decides what becomes of it: a wrapped socket may outlive the TLS.)
    if (transport.kind === "tcp") transport.socket.destroy()
  }
  const fail = (error: SslError.SslError) => {
    teardown()
    finish(Effect.fail(error))
  }
  const onError = (error: unknown) => fail(Errors.handshakeError("server", peer, error))
  const onClose = () => fail(new SslError.HandshakeError({ reason: "PeerClosed", side: "server", peer }))
  const onSecure = () => {
    const socket = tls!
    cleanup()
    // As tls.Server does for its sockets: from now on node:tls reports TLS errors (a bad
    // record, a renegotiation) as 'error' events instead of keeping them to itself.
    socket._releaseControl()
    socket.disableRenegotiation()
    const verdict = serverVerdict(socket, state, spec.compiled.anchors, peer)
    if (SslError.isSslError(verdict)) {
      // node:tls cannot send an alert once the handshake is done (its OpenSSL verify callback
      // accepts every certificate): a reset at least tells the client that this is no clean
      // end of the connection.
      // `resetAndDestroy` on the TCP socket would close the handle under OpenSSL (a crash);
      // this flag makes node:tls's own teardown, which destroys the TCP socket, reset it.
      if (transport.kind === "tcp") {
        ;(transport.socket as Net.Socket & { resetAndClosing: boolean }).resetAndClosing = true
      }
      return fail(verdict)
    }
    finish(Effect.succeed(
      new TlsConnection(socket, {
        mode: "accept",
        verified: verdict.verified,
        resumed: socket.isSessionReused(),
        peerDer: verdict.peerDer,
        ownLeafDer: served.state.chain[0]?.der,
        servername: undefined,
        native: transport.kind === "tcp"
      }, lay(socket))
    ))
  }

  transportErrors?.on("error", onError)
  if (watchOffer && transport.kind === "tcp") {
    // Until the offer is read the TCP socket is all there is.
    transport.socket.once("close", onClose)
    transport.socket.once("end", onClose)
    stopReading = readAlpnOffer(transport.socket, (offered) => {
      stopReading = undefined
      transport.socket.off("close", onClose)
      transport.socket.off("end", onClose)
      tls = make(shouldOfferAlpn(state.alpn, offered))
    })
  } else {
    tls = make(!watchOffer)
    if (watchOffer) {
      const socket = tls
      stopReading = watchAlpnOffer(raw, (offered) => {
        stopReading = undefined
        if (shouldOfferAlpn(state.alpn, offered)) socket._handle?.setALPNProtocols(alpnWire(state.alpn))
      })
    }
  }
  return {
    cancel: teardown,
    timedOut: () => fail(timeoutError("server", peer, spec.timeout)),
    waitedFor: (f) => {
      if (outcome !== undefined) f(outcome)
      else waiting = f
    }
  }
}

interface SniRun {
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  cancelled: boolean
}

// Server-side SNI: the context's callback picks another context by the requested name. It runs
// as a fiber of its own, which the handshake interrupts when it ends first (a timeout, a reset):
// a callback that hangs must not outlive its connection.
const sniCallback = (
  callback: (servername: string) => Effect.Effect<Option.Option<SslContextT.ServerContext>>,
  runtime: Runtime.Runtime<never>,
  chosen: (context: SslContextT.ServerContext) => void,
  running: SniRun
) =>
(servername: string, done: (error: Error | null, context?: Tls.SecureContext) => void) => {
  const fiber = Runtime.runFork(runtime)(
    Effect.flatMap(callback(servername), (picked) =>
      Option.match(picked, {
        onNone: () => Effect.succeed(undefined),
        onSome: (context) =>
          Effect.map(secureContextFor(context), (secure) => {
            chosen(context)
            return secure
          })
      }))
  )
  running.fiber = fiber
  fiber.addObserver((exit) => {
    running.fiber = undefined
    if (Exit.isSuccess(exit)) done(null, exit.value)
    // Interrupted by the handshake's end: node:tls is past waiting. Any other failure, an
    // interruption of the callback's own included, fails the handshake now.
    else if (!running.cancelled) {
      done(new Error(`the server name callback failed for ${servername}: ${Cause.pretty(exit.cause)}`))
    }
  })
}
