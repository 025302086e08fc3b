/**
 * The Ssl service over node:tls.
 *
 * @internal
 */
import { Ssl } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as NodeTls from "./nodeTls.js"

/**
 * Runs `acquire` in a child of the current scope that is closed at once if it fails or is
 * interrupted: a connect, accept or wrap that does not succeed releases its socket now, not when
 * the caller's (possibly long-lived) scope ends. On success the child lives as long as the scope.
 */
const releaseOnFailure = <A, E>(
  acquire: Effect.Effect<A, E, Scope.Scope>
): Effect.Effect<A, E, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const child = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
      const exit = yield* Effect.exit(restore(Scope.extend(acquire, child)))
      if (Exit.isFailure(exit)) yield* Scope.close(child, exit)
      return yield* exit
    })
  )

/** @internal */
export const make: Effect.Effect<Ssl.Service> = Effect.sync(() => {
  const loadFailure = NodeTls.probe()
  return {
    available: Option.isNone(loadFailure),
    loadFailReason: loadFailure,
    connect: (hostname, port, context) =>
      releaseOnFailure(Effect.gen(function*() {
        const ctx = yield* NodeTls.contextFor("client", context)
        const socket = yield* NodeTls.tcpConnect(hostname, port)
        return yield* NodeTls.secureSocket(socket, {
          mode: "connect",
          context: ctx,
          hostname,
          peer: `${hostname}:${port}`,
          shutdownOnClose: true
        })
      })),
    listen: (port, options) =>
      Effect.gen(function*() {
        const context = yield* NodeTls.contextFor("server", options?.context)
        // Fail at listen time, not at the first handshake, when OpenSSL rejects the identity.
        yield* NodeTls.secureContextFor(context)
        const timeout = yield* Ssl.HandshakeTimeout
        const tcp = yield* NodeTls.tcpListen(port, {
          hostname: options?.hostname,
          backlog: options?.backlog,
          dropEnded: true
        })
        const listener: Ssl.Listener = {
          [Ssl.ListenerTypeId]: Ssl.ListenerTypeId,
          address: tcp.address,
          context,
          acceptTransport: Effect.map(tcp.accept, (socket) =>
            releaseOnFailure(NodeTls.secureSocket(socket, {
              mode: "accept",
              context,
              hostname: undefined,
              peer: socket.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort}`,
              shutdownOnClose: true,
              // the listener's, as it was when it started listening
              handshakeTimeout: timeout
            })).pipe(
              // The socket itself was taken into the caller's scope by tcp.accept.
              Effect.onError(() => Effect.sync(() => socket.destroy()))
            )),
          close: tcp.close
        }
        return listener
      }),
    wrap: (duplex, options) =>
      releaseOnFailure(Effect.gen(function*() {
        const kind = options.mode === "connect" ? "client" : "server"
        // Only a missing context falls back to the protocol: `context: null` is refused, not ignored.
        const context = yield* NodeTls.contextFor(kind, options.context !== undefined ? options.context : options.protocol)
        return yield* NodeTls.secureDuplex(duplex, {
          mode: options.mode,
          context,
          hostname: options.hostname,
          peer: options.hostname,
          shutdownOnClose: options.shutdownOnClose ?? true,
          closeOriginal: options.closeOriginal ?? false
        })
      }))
  }
})
