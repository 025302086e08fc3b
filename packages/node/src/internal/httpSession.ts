/**
 * Which TLS connection an HTTP request came on: the HTTPS server layer records each connection
 * by the socket it hands to node:http, and a request finds it through its Node request's socket.
 * Kept apart from the server module so that asking costs no import of node:http.
 *
 * @internal
 */
import type { Ssl } from "@effect-ssl/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"

const connections = new WeakMap<object, Ssl.Connection>()

/** @internal */
export const register = (socket: object, connection: Ssl.Connection): void => {
  connections.set(socket, connection)
}

/** @internal */
export const sessionOf = (
  request: { readonly source: unknown }
): Effect.Effect<Ssl.SessionInfo, Cause.NoSuchElementException> => {
  const source = request.source
  const socket = Predicate.hasProperty(source, "socket") ? source.socket : undefined
  const connection = Predicate.isObject(socket) ? connections.get(socket) : undefined
  return connection === undefined
    ? Effect.fail(new Cause.NoSuchElementException("the request did not come through NodeSsl.layerHttpServer"))
    : connection.session
}
