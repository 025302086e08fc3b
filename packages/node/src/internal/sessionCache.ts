/**
 * Client session resumption: the sessions servers offer (TLS 1.3 tickets, TLS 1.2 tickets and
 * session ids), kept per client context and per host, port and server name, with what the
 * handshake that made them verified. A resumed handshake exchanges no certificates, so the
 * certificate and the verdict travel with the session.
 *
 * @internal
 */
import type { SslContext as SslContextT } from "@effect-ssl/core"

/** @internal */
export interface CachedSession {
  readonly session: Buffer
  readonly verified: boolean
  readonly peerDer: Uint8Array | undefined
}

interface Cache {
  /** the context's version the sessions were made under: other roots or checks make them stale */
  readonly version: number
  readonly entries: Map<string, CachedSession>
}

// Enough for the hosts a program talks to; the oldest goes first beyond it.
const maxEntries = 1024

const caches = new WeakMap<SslContextT.SslContext, Cache>()

/** @internal */
export const sessionKey = (host: string, port: number | undefined, servername: string | undefined): string =>
  `${host}\u0000${port ?? ""}\u0000${servername ?? ""}`

const cacheOf = (context: SslContextT.SslContext): Cache => {
  const cache = caches.get(context)
  if (cache !== undefined && cache.version === context.state.version) return cache
  const fresh: Cache = { version: context.state.version, entries: new Map() }
  caches.set(context, fresh)
  return fresh
}

/** The session to offer, if the context caches and has one. @internal */
export const lookup = (context: SslContextT.SslContext, key: string): CachedSession | undefined =>
  context.state.sessionCache ? cacheOf(context).entries.get(key) : undefined

/** Keeps a session the server offered. @internal */
export const store = (context: SslContextT.SslContext, key: string, session: CachedSession): void => {
  if (!context.state.sessionCache) return
  const entries = cacheOf(context).entries
  entries.delete(key)
  entries.set(key, session)
  if (entries.size > maxEntries) entries.delete(entries.keys().next().value!)
}

/** A session that failed to resume, or a server that refused it, is not offered again. @internal */
export const forget = (context: SslContextT.SslContext, key: string): void => {
  caches.get(context)?.entries.delete(key)
}
