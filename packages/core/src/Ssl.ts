/**
 * The Ssl service: TLS clients, servers and wrappers whose connections are scoped resources.
 * A platform adapter provides it (`NodeSsl.layer` on Node).
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import { observe } from "./internal/observability.js"
import * as PlatformSocket from "./internal/socket.js"
import * as Pki from "./Pki.js"
import type * as Port from "./Port.js"
import type * as Protocol from "./Protocol.js"
import type * as SslContext from "./SslContext.js"
import { InvalidArgumentError, type SslError, SslUnavailableError } from "./SslError.js"

/**
 * A host and port.
 *
 * @since 0.1.0
 * @category models
 */
export interface Address {
  readonly hostname: string
  readonly port: number
}

/**
 * The peer's certificate, as it was presented (verified or not).
 *
 * @since 0.1.0
 * @category models
 */
export interface PeerCertificate {
  /** OpenSSL one-line form, e.g. "/C=US/O=…/CN=…" */
  readonly subject: string
  readonly issuer: string
  readonly validFrom: Date
  readonly validTo: Date
  /** "AB:CD:…", as node:crypto prints it */
  readonly fingerprint256: string
  /** "DNS:localhost", "IP Address:127.0.0.1" */
  readonly subjectAltNames: ReadonlyArray<string>
  /** the certificate's DER encoding */
  readonly der: Uint8Array
  /** hex, as node:crypto prints it ("44845B10…") */
  readonly serialNumber: string
  /** base64 of the SHA-256 of its DER SubjectPublicKeyInfo: the usual public-key pin */
  readonly spkiSha256: string
}

/**
 * What was negotiated on a connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionInfo {
  readonly protocol: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3"
  /** OpenSSL name, e.g. "TLS_AES_256_GCM_SHA384" */
  readonly cipher: string
  /** the peer's chain (and host name, for a client) verified */
  readonly verified: boolean
  readonly peerCertificate: Option.Option<PeerCertificate>
  readonly alpnProtocol: Option.Option<string>
  /** SNI sent (client) or received (server) */
  readonly servername: Option.Option<string>
  readonly localAddress: Address
  readonly remoteAddress: Address
  /** the handshake resumed an earlier session (no certificates were exchanged; `peerCertificate` is the one verified when the session was made) */
  readonly resumed: boolean
}

/**
 * An established TLS connection: its ports and what was negotiated. It lives as long as the
 * scope it was made in.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection extends Port.Duplex {
  readonly session: Effect.Effect<SessionInfo>
  /** Closes the output without sending close_notify (Racket's `ssl-abandon-port`). */
  readonly abandon: Effect.Effect<void>
  /**
   * Channel binding data, equal on both ends of the connection: `tls-unique` (TLS 1.2 and below,
   * the first Finished message), `tls-exporter` (RFC 9266: 32 bytes exported with the label
   * "EXPORTER-Channel-Binding"), `tls-server-end-point` (RFC 5929: a hash of the server's
   * certificate). Fails with InvalidArgumentError where the type does not apply.
   */
  channelBinding(type: ChannelBindingType): Effect.Effect<Uint8Array, InvalidArgumentError>
}

/**
 * The channel binding types of `Connection.channelBinding`.
 *
 * @since 0.1.0
 * @category models
 */
export type ChannelBindingType = "tls-unique" | "tls-exporter" | "tls-server-end-point"

/**
 * The host names a certificate is for: its DNS subject alt names, else its common names (Racket's
 * `ssl-peer-certificate-hostnames`), as the platform reads them from the certificate itself. A
 * certificate the platform did not describe (one built by hand) names none.
 *
 * @since 0.1.0
 * @category hostnames
 */
export const peerHostnames = (certificate: PeerCertificate): ReadonlyArray<string> =>
  Pki.hostCheckOf(certificate)?.hostnames ?? []

/**
 * Whether a certificate is valid for a host name or IP address (Racket's
 * `ssl-peer-check-hostname`), as OpenSSL decides it in the handshake (RFC 6125: wildcards in the
 * left-most label only, the common names only when there is no DNS alt name, IP addresses against
 * IP alt names only). Brackets around an IPv6 address and one trailing dot are ignored. A
 * certificate the platform did not describe (one built by hand) is valid for no name.
 *
 * @since 0.1.0
 * @category hostnames
 */
export const checkHostname = (certificate: PeerCertificate, hostname: string): boolean => {
  const check = Pki.hostCheckOf(certificate)
  if (check === undefined || typeof hostname !== "string") return false
  const host = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname
  return check.matches(host)
}

/**
 * @since 0.1.0
 * @category type ids
 */
export const ListenerTypeId: unique symbol = Symbol.for("@effect-ssl/core/Ssl/Listener")

/**
 * @since 0.1.0
 * @category type ids
 */
export type ListenerTypeId = typeof ListenerTypeId

/**
 * A TLS listener. Its scope (or `Ssl.close`) stops it and drops the connections not yet accepted.
 *
 * @since 0.1.0
 * @category models
 */
export interface Listener {
  readonly [ListenerTypeId]: ListenerTypeId
  readonly address: Address
  /** the server context connections are accepted with; the context procedures accept the listener too */
  readonly context: SslContext.ServerContext
  /**
   * Waits for the next TCP connection and returns the step that runs its TLS handshake; the
   * connection belongs to the scope from the start. `accept` and `serve` are built on it.
   */
  readonly acceptTransport: Effect.Effect<Effect.Effect<Connection, SslError, Scope.Scope>, SslError, Scope.Scope>
  readonly close: Effect.Effect<void>
}

/**
 * Options of `Ssl.listen`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListenOptions {
  /** pending connections the OS may queue (Racket's queue-k); default 511 */
  readonly backlog?: number | undefined
  /** SO_REUSEPORT-style reuse of the address; default false */
  readonly reuse?: boolean | undefined
  /** the address to bind; default all interfaces */
  readonly hostname?: string | undefined
  readonly context?: SslContext.ServerContext | Protocol.Protocol | undefined
}

/**
 * Options of `Ssl.wrap`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WrapOptions {
  readonly mode: "connect" | "accept"
  readonly context?: SslContext.SslContext | undefined
  /** used to make a context when none is given; default "auto" */
  readonly protocol?: Protocol.Protocol | undefined
  /** the server name to send (SNI) and to verify, in "connect" mode */
  readonly hostname?: string | undefined
  /**
   * close the wrapped duplex when both TLS ports are closed (or the connection's scope ends);
   * default false: the duplex is handed back open and usable
   */
  readonly closeOriginal?: boolean | undefined
  /** send close_notify when the output is closed; default true */
  readonly shutdownOnClose?: boolean | undefined
}

/**
 * What a platform adapter implements.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly available: boolean
  readonly loadFailReason: Option.Option<string>
  readonly connect: (
    hostname: string,
    port: number,
    context?: SslContext.ClientContext | Protocol.Protocol
  ) => Effect.Effect<Connection, SslError, Scope.Scope>
  readonly listen: (port: number, options?: ListenOptions) => Effect.Effect<Listener, SslError, Scope.Scope>
  readonly wrap: (duplex: Port.Duplex, options: WrapOptions) => Effect.Effect<Connection, SslError, Scope.Scope>
}

/**
 * The Ssl service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Ssl extends Context.Tag("@effect-ssl/core/Ssl")<Ssl, Service>() {}

/**
 * How long a peer may take to finish its TLS handshake (default 30 seconds).
 *
 * @since 0.1.0
 * @category references
 */
export class HandshakeTimeout extends Context.Reference<HandshakeTimeout>()("@effect-ssl/core/Ssl/HandshakeTimeout", {
  defaultValue: (): Duration.Duration => Duration.seconds(30)
}) {}

/**
 * Sets the handshake timeout for every connection `effect` connects, accepts or wraps (for a
 * listener, the value in force when `listen` runs).
 *
 * @since 0.1.0
 * @category references
 */
export const withHandshakeTimeout: {
  (duration: Duration.DurationInput): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, duration: Duration.DurationInput): Effect.Effect<A, E, R>
} = ((...args: Array<unknown>) => {
  if (args.length === 1) {
    const duration = args[0] as Duration.DurationInput
    return <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.provideService(effect, HandshakeTimeout, Duration.decode(duration))
  }
  const [effect, duration] = args as [Effect.Effect<unknown, unknown, unknown>, Duration.DurationInput]
  return Effect.provideService(effect, HandshakeTimeout, Duration.decode(duration))
}) as never

/**
 * Whether TLS works in this runtime (Racket's `ssl-available?`).
 *
 * @since 0.1.0
 * @category accessors
 */
export const available: Effect.Effect<boolean, never, Ssl> = Effect.map(Ssl, (ssl) => ssl.available)

/**
 * Why TLS does not work here, when it does not (Racket's `ssl-load-fail-reason`).
 *
 * @since 0.1.0
 * @category accessors
 */
export const loadFailReason: Effect.Effect<Option.Option<string>, never, Ssl> = Effect.map(
  Ssl,
  (ssl) => ssl.loadFailReason
)

/**
 * Connects to `hostname:port` and completes the TLS handshake. The server is verified (chain and
 * host name) unless the context says otherwise; a protocol name makes a fresh default context.
 * Interruptible at every step: wrap it in `Effect.timeout` to bound it. Runs in the span
 * `effect-ssl.connect` and records the `SslMetrics`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Ssl } from "@effect-ssl/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const conn = yield* Ssl.connect("example.com", 443)
 *   yield* conn.output.write("HEAD / HTTP/1.0\r\nHost: example.com\r\n\r\n")
 *   return yield* conn.input.readLine
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (
  hostname: string,
  port: number,
  context?: SslContext.ClientContext | Protocol.Protocol
): Effect.Effect<Connection, SslError, Ssl | Scope.Scope> =>
  observe(
    "connect",
    "client",
    () => ({ peer: `${hostname}:${port}`, serverAddress: hostname, serverPort: port }),
    // (the service read in one step: `Effect.flatMap(Ssl, …)` takes three, each run cold beside
    // the sockets on the way to every connection)
    Effect.withFiberRuntime((fiber) =>
      Context.get(fiber.currentContext as Context.Context<Ssl>, Ssl).connect(hostname, port, context)
    )
  )

/**
 * Listens for TLS connections; port 0 picks a free port (see `listener.address.port`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const listen = (
  port: number,
  options?: ListenOptions
): Effect.Effect<Listener, SslError, Ssl | Scope.Scope> => Effect.flatMap(Ssl, (ssl) => ssl.listen(port, options))

/**
 * Accepts the next connection and completes its handshake. A client whose handshake fails
 * fails this accept only; the listener keeps accepting. The handshake runs in the span
 * `effect-ssl.accept` and records the `SslMetrics`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const accept = (listener: Listener): Effect.Effect<Connection, SslError, Scope.Scope> =>
  // The span and the duration start when a client has connected, not while waiting for one.
  Effect.flatMap(listener.acceptTransport, observeAccept)

const observeAccept = (handshake: Effect.Effect<Connection, SslError, Scope.Scope>) =>
  observe("accept", "server", undefined, handshake)

/**
 * Stops a listener (its scope also does).
 *
 * @since 0.1.0
 * @category destructors
 */
export const close = (listener: Listener): Effect.Effect<void> => listener.close

/**
 * @since 0.1.0
 * @category refinements
 */
export const isListener = (u: unknown): u is Listener => Predicate.hasProperty(u, ListenerTypeId)

/**
 * Runs TLS over any duplex, as client (`"connect"`) or server (`"accept"`): STARTTLS, or TLS over
 * an in-memory pipe. Runs in the span `effect-ssl.wrap` and records the `SslMetrics`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const wrap = (
  duplex: Port.Duplex,
  options: WrapOptions
): Effect.Effect<Connection, SslError, Ssl | Scope.Scope> =>
  observe(
    "wrap",
    options.mode === "connect" ? "client" : "server",
    options.hostname === undefined ? undefined : () => ({ peer: options.hostname }),
    Effect.flatMap(Ssl, (ssl) => ssl.wrap(duplex, options))
  )

/**
 * Serves a listener: every connection is handshaken and handled in its own fiber and scope, at
 * most `concurrency` handlers at once (default unbounded). Handshakes take no part of that limit:
 * they run as connections come, so that clients that never finish theirs cannot keep good clients
 * waiting (the listener's `backlog` bounds how many connections may be in their handshake at
 * once). A failing handshake or handler ends its own connection only (it is logged at debug
 * level). Runs until interrupted or the listener closes; interrupting it closes every open
 * connection. Each handshake runs in the span `effect-ssl.accept` and records the `SslMetrics`,
 * as with `accept`.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Ssl } from "@effect-ssl/core"
 *
 * const echo = (listener: Ssl.Listener) =>
 *   Ssl.serve(listener, (conn) => conn.input.stream.pipe(Stream.run(conn.output.sink)))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const serve: {
  <E, R>(
    handler: (connection: Connection) => Effect.Effect<void, E, R>,
    options?: ServeOptions<E>
  ): (listener: Listener) => Effect.Effect<void, SslError, Exclude<R, Scope.Scope>>
  <E, R>(
    listener: Listener,
    handler: (connection: Connection) => Effect.Effect<void, E, R>,
    options?: ServeOptions<E>
  ): Effect.Effect<void, SslError, Exclude<R, Scope.Scope>>
} = ((...args: Array<unknown>) =>
  isListener(args[0])
    ? serveImpl(args[0], args[1] as never, args[2] as never)
    : (listener: Listener) => serveImpl(listener, args[0] as never, args[1] as never)) as never

/**
 * Options of `Ssl.serve`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServeOptions<E> {
  /** most handlers running at once (handshakes are not counted); default unbounded */
  readonly concurrency?: number | undefined
  /** told of every connection that ends with a failure (handshake or handler); default: a debug log */
  readonly onError?: ((cause: Cause.Cause<E | SslError>) => Effect.Effect<void>) | undefined
}

const logFailure = (cause: Cause.Cause<unknown>) =>
  Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logDebug("effect-ssl: connection ended with a failure", cause)

const serveImpl = <E, R>(
  listener: Listener,
  handler: (connection: Connection) => Effect.Effect<void, E, R>,
  options?: ServeOptions<E>
): Effect.Effect<void, SslError, Exclude<R, Scope.Scope>> =>
  Effect.scoped(Effect.gen(function*() {
    // Infinity is the default spelled out.
    const concurrency = options?.concurrency === Infinity ? undefined : options?.concurrency
    if (concurrency !== undefined && !(Number.isSafeInteger(concurrency) && concurrency > 0)) {
      return yield* new InvalidArgumentError({
        argument: "concurrency",
        value: concurrency,
        reason: "expected a positive integer"
      })
    }
    // Without a limit no permits are taken: a semaphore step per connection for nothing.
    const permits = concurrency === undefined ? undefined : yield* Effect.makeSemaphore(concurrency)
    const onError = options?.onError
    const reported = (cause: Cause.Cause<E | SslError>) =>
      onError === undefined || Cause.isInterruptedOnly(cause) ? logFailure(cause) : onError(cause)
    const stopped = yield* Deferred.make<void, SslError>()
    // The connections' fibers, as a FiberSet keeps them, but each leaves the set by itself when it
    // is done (a FiberSet holds an observer closure per fiber): the end of serve interrupts them
    // all and waits for their scopes to close.
    const running = new Set<Fiber.RuntimeFiber<void, never>>()
    let closed = false
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const all = Array.from(running)
        running.clear()
        return Fiber.interruptAll(all)
      })
    )
    const runtime = yield* Effect.runtime<R>()
    // Every fiber is given its context (with its scope) at its fork; without this fiber's own
    // entry for the context, Effect records that as a one-element history rather than prepending
    // it to this fiber's (an array with room for more, kept as long as the connection).
    const fiberRefs = FiberRefs.delete(runtime.fiberRefs, FiberRef.currentContext)
    // Each connection's fiber is the one that waited for it: once it has its connection it forks
    // the next waiter, then handshakes and runs the handler, all in one scope (the handler's own).
    // No loop fiber wakes per connection.
    // The handshake takes no permit: a client that never finishes its handshake must not keep a
    // slot of the handler's concurrency from a good client.
    const onTaken = (
      handshake: Effect.Effect<Connection, SslError, Scope.Scope>
    ): Effect.Effect<void, E | SslError, R | Scope.Scope> => {
      const connection = observeAccept(handshake)
      return Effect.zipRight(
        forkAcceptor,
        permits === undefined
          ? Effect.flatMap(connection, handler)
          : Effect.flatMap(connection, (conn) => permits.withPermits(1)(handler(conn)))
      )
    }
    // Everything below is made once per serve, not per connection: an idle connection's fiber
    // holds only its handler's own frames and these (Effect.scoped and catchAllCause per
    // connection would keep a closure, a provided context and their frames alive for as long as
    // the connection lives). A fiber's scope is in its context from its start, and is closed with
    // the fiber's outcome as Effect.scoped would.
    const accepting = Effect.catchAllCause(
      Effect.matchCauseEffect(listener.acceptTransport, {
        onFailure: (cause) => Deferred.failCause(stopped, cause),
        onSuccess: onTaken
      }),
      reported
    )
    // The fiber's scope is closed, then it leaves `running`, whatever the close came to. (In the
    // acceptor's uninterruptible region, and with the scope read from the fiber's context: each
    // step of `Effect.ensuring` and `Effect.flatMap(Effect.scope, …)` would run cold beside the
    // sockets, once per connection.)
    const finish = (exit: Exit.Exit<unknown, unknown>) =>
      Effect.withFiberRuntime<void>((fiber) => {
        const scope = Context.get(fiber.currentContext as Context.Context<Scope.Scope>, Scope.Scope)
        const leave = () => running.delete(fiber as Fiber.RuntimeFiber<void, never>)
        return Effect.matchCauseEffect(Scope.close(scope as Scope.CloseableScope, exit), {
          onFailure: (cause) => {
            leave()
            return Effect.failCause(cause)
          },
          onSuccess: () => {
            leave()
            return Effect.void
          }
        })
      })
    const acceptor = Effect.uninterruptible(Effect.matchCauseEffect(Effect.interruptible(accepting), {
      onFailure: (cause) => Effect.zipRight(finish(Exit.failCause(cause)), Effect.failCause(cause)),
      onSuccess: () => finish(Exit.void)
    })) as Effect.Effect<void, never, R | Scope.Scope>
    // The next waiter starts once this fiber waits (the scheduler's next turn, before the event
    // loop polls for connections again), not at once: started at once it would run up to its own
    // wait before this connection's handler runs, on the way from the handshake to the first read.
    const later = { immediate: false }
    const forkAcceptor: Effect.Effect<void> = Effect.flatMap(Scope.make(), (scope) =>
      Effect.sync(() => {
        if (closed) return
        const fiber = Runtime.runFork(Runtime.make({
          context: Context.add(runtime.context, Scope.Scope, scope),
          fiberRefs,
          runtimeFlags: runtime.runtimeFlags
        }))(acceptor, later)
        running.add(fiber)
      }))
    yield* forkAcceptor
    return yield* Deferred.await(stopped)
  })) as never

/**
 * A layer for runtimes without TLS: `available` is false and every operation fails with
 * `SslUnavailableError` carrying `reason`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerUnavailable = (reason: string): Layer.Layer<Ssl> => {
  const unavailable = Effect.fail(new SslUnavailableError({ reason }))
  return Layer.succeed(Ssl, {
    available: false,
    loadFailReason: Option.some(reason),
    connect: () => unavailable,
    listen: () => unavailable,
    wrap: () => unavailable
  })
}

/**
 * An established connection as an @effect/platform `Socket`, so that Socket-based code (NDJSON,
 * `@effect/rpc`'s socket protocol, `Socket.toChannel`) runs over TLS.
 *
 * - `run(handler)` reads the connection until its end of input (the peer's close_notify, or a TCP
 *   close) and then succeeds; a handler's effect runs in its own fiber, as with `NodeSocket`.
 *   It can be run again (a connection at its end of input ends the next run at once).
 * - `writer` writes to the connection (strings as UTF-8); when the writer's scope ends, the output
 *   is closed (close_notify) and the input stays readable. A `Socket.CloseEvent` closes both
 *   ports: TLS has no close codes, so the code only decides how a run under way ends (1000 and
 *   1006 end it, any other code fails it with `SocketCloseError`).
 * - Failures are `SocketGenericError`s ("Read", "Write") whose `cause` is the `SslError`.
 * - The connection belongs to the scope it was made in: the socket does not close it.
 *
 * @example
 * ```ts
 * import { Socket } from "@effect/platform"
 * import { Effect } from "effect"
 * import { Ssl } from "@effect-ssl/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const socket = Ssl.toSocket(yield* Ssl.connect("example.com", 443))
 *   const write = yield* socket.writer
 *   yield* write("HEAD / HTTP/1.0\r\nHost: example.com\r\n\r\n")
 *   yield* socket.run((bytes) => Effect.log(new TextDecoder().decode(bytes)))
 * }))
 * ```
 *
 * @since 0.2.0
 * @category platform
 */
export const toSocket = (connection: Connection): Socket.Socket => PlatformSocket.fromConnection(connection)

/**
 * A `Socket` that makes a new connection with `open` for every `run`, as `NodeSocket.makeNet` opens
 * a TCP connection per run: the connection lives as long as the run, writes wait for a run to
 * have connected, and an `open` that fails fails the run with `SocketGenericError` "Open" (its
 * `cause` the `SslError`). A client that reconnects (`@effect/rpc`'s socket protocol does) makes a
 * new connection each time. Whatever `open` needs besides a scope is taken from where the socket
 * is made.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Ssl } from "@effect-ssl/core"
 *
 * const socket = Ssl.makeSocket(Ssl.connect("example.com", 443)) // Effect<Socket, never, Ssl>
 * ```
 *
 * @since 0.2.0
 * @category platform
 */
export const makeSocket = <R>(
  open: Effect.Effect<Connection, SslError, R>
): Effect.Effect<Socket.Socket, never, Exclude<R, Scope.Scope>> =>
  Effect.map(
    Effect.context<Exclude<R, Scope.Scope>>(),
    (context) =>
      PlatformSocket.fromOpen(
        Effect.mapInputContext(
          open as Effect.Effect<Connection, SslError, Scope.Scope | Exclude<R, Scope.Scope>>,
          (input: Context.Context<Scope.Scope>) => Context.merge(context, input)
        )
      )
  )
