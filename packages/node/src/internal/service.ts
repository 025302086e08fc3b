/**
 * The Ssl service over node:tls.
 *
 * @internal
 */
import { Ssl } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeTls from "./nodeTls.js"

/** @internal */
export const make: Effect.Effect<Ssl.Service> = Effect.sync(() => {
  const loadFailure = NodeTls.probe()
  return {
    available: Option.isNone(loadFailure),
    loadFailReason: loadFailure,
    connect: (hostname, port, context) =>
      Effect.gen(function*() {
        const ctx = yield* NodeTls.contextFor("client", context)
        const socket = yield* NodeTls.tcpConnect(hostname, port)
        return yield* NodeTls.secureSocket(socket, {
          mode: "connect",
          context: ctx,
          hostname,
          peer: `${hostname}:${port}`,
          shutdownOnClose: true
        })
      }),
    listen: (port, options) =>
      Effect.gen(function*() {
        const context = yield* NodeTls.contextFor("server", options?.context)
        // Fail at listen time, not at the first handshake, when OpenSSL rejects the identity.
        yield* NodeTls.secureContextFor(context)
        const timeout = yield* Ssl.HandshakeTimeout
        const tcp = yield* NodeTls.tcpListen(port, { hostname: options?.hostname, backlog: options?.backlog })
        const listener: Ssl.Listener = {
          [Ssl.ListenerTypeId]: Ssl.ListenerTypeId,
          address: tcp.address,
          context,
          acceptTransport: Effect.map(tcp.accept, (socket) =>
            NodeTls.secureSocket(socket, {
              mode: "accept",
              context,
              hostname: undefined,
              peer: `${socket.remoteAddress}:${socket.remotePort}`,
              shutdownOnClose: true
            }).pipe(Ssl.withHandshakeTimeout(timeout))),
          close: tcp.close
        }
        return listener
      }),
    wrap: (duplex, options) =>
      Effect.gen(function*() {
        const kind = options.mode === "connect" ? "client" : "server"
        const context = yield* NodeTls.contextFor(kind, options.context ?? options.protocol)
        return yield* NodeTls.secureDuplex(duplex, {
          mode: options.mode,
          context,
          hostname: options.hostname,
          peer: options.hostname,
          shutdownOnClose: options.shutdownOnClose ?? true,
          closeOriginal: options.closeOriginal ?? false
        })
      })
  }
})
