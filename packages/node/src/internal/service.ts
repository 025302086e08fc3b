/**
 * The Ssl service over node:tls: connect, listen and wrap put together from the handshake,
 * transport and TCP modules.
 *
 * @internal
 */
import type { Port as PortT, Protocol as ProtocolT } from "@effect-ssl/core"
import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import type * as Net from "node:net"
import type { TlsConnection } from "./connection.js"
import { clientHandshake } from "./handshakeClient.js"
import {
  awaitServerHandshake,
  beginServerHandshake,
  type ServerHandshake,
  serverHandshake,
  type ServerSpec,
  type ServerTransport
} from "./handshakeServer.js"
import { SocketFeed, watchEnd } from "./jsStreamTransport.js"
import { compile, type Compiled, compileNow, probe } from "./secureContext.js"
import { checkHostname, invalidHostname, invalidPort, tcpConnect, tcpListen, type TcpServer } from "./tcp.js"
import { secureDuplex } from "./wrap.js"

/** What is wrong with a context given as one, if anything, for code already inside an Effect step. */
const invalidContext = (kind: "client" | "server", given: unknown): SslError.InvalidArgumentError | undefined =>
  SslContext.isSslContext(given) && given.kind === kind ? undefined : new SslError.InvalidArgumentError({
    argument: "context",
    value: SslContext.isSslContext(given) ? `${given.kind} context` : given,
    reason: `expected a ${kind} context or a protocol name`
  })

/** @internal */
export const contextFor = <K extends "client" | "server">(
  kind: K,
  given: SslContext.SslContext | ProtocolT.Protocol | undefined
): Effect.Effect<K extends "client" ? SslContext.ClientContext : SslContext.ServerContext, SslError.SslError> => {
  if (given === undefined || typeof given === "string") {
    return (kind === "client" ? SslContext.makeClient(given) : SslContext.makeServer(given)) as never
  }
  const invalid = invalidContext(kind, given)
  return (invalid === undefined ? Effect.succeed(given) : Effect.fail(invalid)) as never
}

/**
 * Runs `acquire` in a child of the current scope that is closed at once if it fails or is
 * interrupted, so that what a failed wrap set up (its bridge, the plain ports it took over) is
 * given back now, not when the caller's scope ends.
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

/**
 * TLS over a TCP connection: on its native handle, or through a JS stream to tell truncation.
 * The arguments are checked and the context compiled (once per context) in the caller's step:
 * every Effect step before a handshake runs cold beside the sockets.
 */
const connect = (
  hostname: string,
  port: number,
  context: unknown,
  timeout: Duration.Duration
): Effect.Effect<Ssl.Connection, SslError.SslError, Scope.Scope> => {
  const invalid = invalidContext("client", context) ?? invalidHostname(hostname) ?? invalidPort(port, false)
  if (invalid !== undefined) return Effect.fail(invalid)
  const ctx = context as SslContext.ClientContext
  const compiled = compileNow(ctx)
  if (compiled instanceof SslError.InvalidArgumentError) return Effect.fail(compiled)
  const spec = { context: ctx, compiled, hostname, peer: `${hostname}:${port}`, shutdownOnClose: true, timeout }
  if (!ctx.state.detectTruncation) {
    return clientHandshake(spec, { kind: "tcp", port })
  }
  return Effect.flatMap(tcpConnect(hostname, port), (socket) => {
    const feed = new SocketFeed(socket)
    return clientHandshake(spec, { kind: "stream", stream: feed, addressed: socket, endWatch: watchEnd(feed), port })
  })
}

/**
 * An accepted TCP connection and, once its handshake is done, its TLS connection: the one
 * finalizer of an accept releases whichever it has come to.
 */
class Accepted {
  connection: TlsConnection | undefined = undefined
  /** the accept's finalizer (bound: smaller than a closure over the accept's own variables) */
  readonly finalizer: Scope.Scope.Finalizer = releaseAccepted.bind(this)
  constructor(readonly socket: Net.Socket) {}
}

function releaseAccepted(this: Accepted): Effect.Effect<void> {
  const { connection, socket } = this
  return connection !== undefined ? connection.release : Effect.sync(() => socket.destroy())
}

// observability.ts's `handshakeBegunAt` in @effect-ssl/core, registered under this name: a
// handshake the listener began early is timed from its beginning, not from the accept's wait.
const handshakeBegunAt = Symbol.for("@effect-ssl/core/handshakeBegunAt")
const defaultClock = Clock.make()

/** A handshake the listener began as its connection arrived, and when. */
interface Begun {
  readonly handshake: ServerHandshake
  /** in the default Clock's nanoseconds */
  readonly at: bigint
}

const handshakeAccepted = (
  accepted: Accepted,
  context: SslContext.ServerContext,
  timeout: Duration.Duration,
  tcp: TcpServer<Begun>
): Effect.Effect<Ssl.Connection, SslError.SslError> => {
  const begun = tcp.begunOn(accepted.socket)
  if (begun === undefined) return handshakeOnAccept(accepted, context, timeout, tcp.handOver)
  const handshake = begun.handshake
  const waited = awaitServerHandshake(timeout, () => handshake, madeBy(accepted, tcp.handOver))
  ;(waited as { [handshakeBegunAt]?: bigint })[handshakeBegunAt] = begun.at
  return waited
}

const handshakeOnAccept = (
  accepted: Accepted,
  context: SslContext.ServerContext,
  timeout: Duration.Duration,
  handOver: (socket: Net.Socket) => void
): Effect.Effect<Ssl.Connection, SslError.SslError> =>
  Effect.suspend(() => {
    const compiled = compileNow(context)
    if (compiled instanceof SslError.InvalidArgumentError) return Effect.fail(compiled)
    // The server name callback runs as a fiber of its own, with this fiber's services.
    return context.state.serverNameCallback === undefined
      ? handshakeWith(accepted, context, compiled, timeout, handOver, undefined)
      : Effect.flatMap(Effect.runtime<never>(), (runtime) =>
        handshakeWith(accepted, context, compiled, timeout, handOver, runtime))
  })

const handshakeWith = (
  accepted: Accepted,
  context: SslContext.ServerContext,
  compiled: Compiled,
  timeout: Duration.Duration,
  handOver: (socket: Net.Socket) => void,
  runtime: Runtime.Runtime<never> | undefined
): Effect.Effect<Ssl.Connection, SslError.SslError> => {
  const socket = accepted.socket
  return serverHandshake(
    acceptSpec(socket, context, compiled, timeout, runtime),
    acceptTransport(socket, context),
    madeBy(accepted, handOver)
  )
}

const acceptSpec = (
  socket: Net.Socket,
  context: SslContext.ServerContext,
  compiled: Compiled,
  timeout: Duration.Duration,
  runtime: Runtime.Runtime<never> | undefined
): ServerSpec => ({
  context,
  compiled,
  peer: socket.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort}`,
  shutdownOnClose: true,
  timeout,
  runtime
})

const acceptTransport = (socket: Net.Socket, context: SslContext.ServerContext): ServerTransport => {
  if (!context.state.detectTruncation) return { kind: "tcp", socket }
  const feed = new SocketFeed(socket)
  return { kind: "stream", stream: feed, addressed: socket, endWatch: watchEnd(feed) }
}

/**
 * The `done` of an accept's handshake. (A failed handshake destroys the socket, which the
 * listener then forgets by itself.) The accept's finalizer was in the scope before the handshake
 * was waited for: it takes the connection over in the step that ends the wait.
 */
const madeBy = (accepted: Accepted, handOver: (socket: Net.Socket) => void) => (connection: TlsConnection) => {
  accepted.connection = connection
  handOver(accepted.socket)
  return Effect.succeed(connection)
}

/**
 * The handshake a listener begins on a connection as it arrives (tcp.ts), unless the context has
 * a server name callback: that runs with the services of the fiber that accepts, so its handshake
 * waits for the accept. A context that no longer compiles is left to the accept to report.
 */
const beginOnArrival = (
  context: SslContext.ServerContext,
  timeout: Duration.Duration
) =>
(socket: Net.Socket): Begun | undefined => {
  if (context.state.serverNameCallback !== undefined) return undefined
  const compiled = compileNow(context)
  if (compiled instanceof SslError.InvalidArgumentError) return undefined
  const at = defaultClock.unsafeCurrentTimeNanos()
  const handshake = beginServerHandshake(
    acceptSpec(socket, context, compiled, timeout, undefined),
    acceptTransport(socket, context)
  )
  return { handshake, at }
}

/** @internal */
export const make: Effect.Effect<Ssl.Service> = Effect.sync(() => {
  const loadFailure = probe()
  return {
    available: Option.isNone(loadFailure),
    loadFailReason: loadFailure,
    connect: (hostname, port, context) =>
      Effect.withFiberRuntime((fiber) => {
        const timeout = Context.get(fiber.currentContext, Ssl.HandshakeTimeout)
        return context === undefined || typeof context === "string"
          ? Effect.flatMap(contextFor("client", context), (made) => connect(hostname, port, made, timeout))
          : connect(hostname, port, context, timeout)
      }),
    listen: (port, options) =>
      Effect.gen(function*() {
        const context = yield* contextFor("server", options?.context)
        // Fail at listen time, not at the first handshake, when OpenSSL rejects the identity.
        yield* compile(context)
        // the listener's, as it was when it started listening
        const timeout = yield* Ssl.HandshakeTimeout
        const tcp = yield* tcpListen(port, {
          hostname: options?.hostname,
          backlog: options?.backlog,
          dropEnded: true,
          begin: beginOnArrival(context, timeout)
        })
        // Taking a connection and making it the scope's is one uninterruptible step (only the
        // wait for one is interruptible): a connection is never taken and then lost.
        // (the scope read from the fiber's context: `Effect.flatMap(Scope.Scope, …)` would take three
        // steps more per connection, each run cold beside the sockets)
        const acceptTransport = Effect.uninterruptible(Effect.flatMap(tcp.take, (socket) =>
          Effect.withFiberRuntime<Effect.Effect<Ssl.Connection, SslError.SslError>, never, Scope.Scope>((fiber) => {
            const accepted = new Accepted(socket)
            const scope = Context.get(fiber.currentContext as Context.Context<Scope.Scope>, Scope.Scope)
            return Effect.as(
              Scope.addFinalizerExit(scope, accepted.finalizer),
              handshakeAccepted(accepted, context, timeout, tcp)
            )
          })))
        const listener: Ssl.Listener = {
          [Ssl.ListenerTypeId]: Ssl.ListenerTypeId,
          address: tcp.address,
          context,
          acceptTransport,
          close: tcp.close
        }
        return listener
      }),
    wrap: (duplex: PortT.Duplex, options: Ssl.WrapOptions) =>
      releaseOnFailure(Effect.gen(function*() {
        const kind = options.mode === "connect" ? "client" : "server"
        // A name to verify the server against is checked as Ssl.connect checks its host name: an
        // empty or malformed one is a bad argument, not a certificate that does not match.
        if (kind === "client" && options.hostname !== undefined) yield* checkHostname(options.hostname)
        // Only a missing context falls back to the protocol: `context: null` is refused, not ignored.
        const context = yield* contextFor(kind, options.context !== undefined ? options.context : options.protocol)
        const compiled = yield* compile(context)
        const timeout = yield* Ssl.HandshakeTimeout
        return yield* secureDuplex(duplex, {
          mode: options.mode,
          context,
          compiled,
          hostname: options.hostname,
          shutdownOnClose: options.shutdownOnClose ?? true,
          closeOriginal: options.closeOriginal ?? false,
          timeout
        })
      }))
  }
})
