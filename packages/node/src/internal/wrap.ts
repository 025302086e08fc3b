/**
 * TLS over any Port.Duplex (`Ssl.wrap`): over the plain ports of a TCP socket (STARTTLS) through
 * a JS stream on the socket itself, which hands the socket back when TLS is over; over anything
 * else through a Node Duplex that reads and writes the ports.
 *
 * @internal
 */
import type { Port as PortT, Ssl, SslContext as SslContextT, SslError } from "@effect-ssl/core"
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type * as Net from "node:net"
import * as NodeStream from "node:stream"
import { releasedWithScope } from "./handshake.js"
import { clientHandshake } from "./handshakeClient.js"
import { serverHandshake } from "./handshakeServer.js"
import { SocketFeed, watchEnd } from "./jsStreamTransport.js"
import type { Compiled } from "./secureContext.js"
import { SocketPorts } from "./socketPorts.js"
import { ignore } from "./tcp.js"

const SocketTypeId = Symbol.for("@effect-ssl/node/NodeSocket")

interface SocketDuplex extends PortT.Duplex {
  readonly [SocketTypeId]: SocketPorts
}

const hasSocket = (duplex: PortT.Duplex): duplex is SocketDuplex => SocketTypeId in duplex

/** Plain ports over a TCP socket, for STARTTLS: wrapping them later uses the socket itself. @internal */
export const plainDuplex = (socket: Net.Socket): PortT.Duplex => {
  const ports = new SocketPorts(socket, {
    shutdownOnClose: true,
    copyWrites: true
  }).start()
  return { input: ports.input, output: ports.output, [SocketTypeId]: ports } as SocketDuplex
}

/**
 * A Node Duplex stream over a Port.Duplex, for TLS over ports that are not sockets. Reads run on
 * their own fiber, one at a time; `stop` ends them and waits, so once it returns the ports are the
 * caller's again (an interrupted read loses no bytes) and plaintext can follow TLS on them.
 */
const bridge = (
  duplex: PortT.Duplex,
  runtime: Runtime.Runtime<never>
): {
  readonly stream: NodeStream.Duplex
  /** stops reading the ports (both TLS ports are closed); what TLS still writes goes on */
  readonly stopReading: Effect.Effect<void>
  /** lets go of the ports altogether (the connection's scope has ended) */
  readonly stop: Effect.Effect<void>
} => {
  let reader: Fiber.RuntimeFiber<void, never> | undefined
  let writer: Fiber.RuntimeFiber<void, SslError.SslError> | undefined
  let reading = false
  let stopped = false
  // Once the connection is over, a write still waiting for room in the ports is interrupted and
  // what TLS had queued behind it is dropped: nothing more of it reaches the original.
  const letGo = () => {
    stopped = true
    const fibers = [reader, writer].filter((fiber) => fiber !== undefined)
    reader = undefined
    writer = undefined
    return fibers
  }
  const stream: NodeStream.Duplex = new NodeStream.Duplex({
    read() {
      if (reading || stopped) return
      reading = true
      // The read may complete synchronously inside runFork: `reading`, not `reader`, says
      // whether one is still under way.
      const fiber = Runtime.runFork(runtime)(
        // Interruptible while it waits; once bytes are taken they are handed on, not dropped.
        Effect.uninterruptibleMask((restore) =>
          Effect.matchEffect(restore(duplex.input.read()), {
            onFailure: (error) =>
              Effect.sync(() => {
                reading = false
                reader = undefined
                stream.destroy(error)
              }),
            onSuccess: (chunk) =>
              Effect.sync(() => {
                reading = false
                reader = undefined
                if (Option.isNone(chunk)) stream.push(null)
                else stream.push(chunk.value)
              })
          })
        )
      )
      if (reading) reader = fiber
    },
    write(chunk: Uint8Array, _encoding, callback) {
      if (stopped) return callback()
      const fiber = Runtime.runFork(runtime)(duplex.output.write(chunk))
      writer = fiber
      fiber.addObserver((exit) => {
        if (writer === fiber) writer = undefined
        // The port's own typed error, so that the connection reports it as it is.
        callback(Exit.isSuccess(exit) || Exit.isInterrupted(exit) ? null : (Cause.squash(exit.cause) as Error))
      })
    },
    final(callback) {
      callback()
    },
    destroy(error, callback) {
      const fibers = letGo()
      if (fibers.length > 0) Runtime.runFork(runtime)(Fiber.interruptAll(fibers))
      callback(error)
    }
  })
  stream.on("error", ignore)
  const stop = Effect.suspend(() => {
    const fibers = letGo()
    return fibers.length === 0 ? Effect.void : Fiber.interruptAll(fibers)
  })
  // Both TLS ports closed is not the end of the connection's writing: what TLS queued (the rest of
  // the data, a close_notify, the handshake's last flight after an abandon) must still reach the
  // ports. Only the reader goes.
  const stopReading = Effect.suspend(() => {
    const fiber = reader
    reader = undefined
    if (fiber === undefined) return Effect.void
    return Fiber.interrupt(fiber).pipe(Effect.asVoid)
  })
  return { stream, stop, stopReading }
}

/** @internal */
export interface WrapSpec {
  readonly mode: "connect" | "accept"
  readonly context: SslContextT.SslContext
  readonly compiled: Compiled
  readonly hostname: string | undefined
  readonly shutdownOnClose: boolean
  readonly closeOriginal: boolean
  readonly timeout: Duration.Duration
}

const handshakeOver = (
  spec: WrapSpec,
  stream: NodeStream.Duplex,
  addressed: Net.Socket | undefined,
  onBothClosed: (() => void) | undefined
): Effect.Effect<Ssl.Connection, SslError.SslError, Scope.Scope> =>
  Effect.flatMap(
    spec.context.state.serverNameCallback !== undefined ? Effect.runtime<never>() : Effect.succeed(undefined),
    (runtime) => {
      // Truncation is told from a clean end only where the context asks for it.
      const endWatch = spec.context.state.detectTruncation ? watchEnd(stream) : undefined
      const common = {
        context: spec.context,
        compiled: spec.compiled,
        peer: spec.hostname,
        shutdownOnClose: spec.shutdownOnClose,
        onBothClosed,
        timeout: spec.timeout
      }
      return spec.mode === "connect"
        ? clientHandshake({ ...common, hostname: spec.hostname }, {
          kind: "stream",
          stream,
          addressed,
          endWatch,
          port: addressed?.remotePort
        })
        : serverHandshake({ ...common, runtime }, { kind: "stream", stream, addressed, endWatch }, releasedWithScope)
    }
  )

/** TLS over any Port.Duplex: a socket's own ports use the socket itself, anything else a bridge. @internal */
export const secureDuplex = (
  duplex: PortT.Duplex,
  spec: WrapSpec
): Effect.Effect<Ssl.Connection, SslError.SslError, Scope.Scope> =>
  Effect.gen(function*() {
    if (hasSocket(duplex)) {
      const plain = duplex[SocketTypeId]
      const socket = plain.socket as Net.Socket
      const leftover = plain.detach()
      for (let i = leftover.length - 1; i >= 0; i--) socket.unshift(leftover[i]!)
      const feed = new SocketFeed(socket, !spec.closeOriginal)
      // Runs after the TLS session's own finalizers (close_notify, destroy): the socket goes back
      // to the plain ports, open and usable, with whatever the peer sent after TLS; or, closed
      // with the connection, it takes the plain ports with it. A handshake still under way (the
      // scope ended first) hears its feed go and fails now, not at its timeout.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (spec.closeOriginal) return plain.closeWithTransport()
          const leftover = feed.release()
          feed.destroy()
          plain.reattach(leftover)
        })
      )
      const connection = yield* handshakeOver(spec, feed, socket, undefined)
      plain.releaseErrorListener()
      return connection
    }
    const runtime = yield* Effect.runtime<never>()
    const { stop, stopReading, stream } = bridge(duplex, runtime)
    let closedOriginal = false
    const closeOriginal = Effect.suspend(() => {
      if (closedOriginal) return Effect.void
      closedOriginal = true
      return Effect.zipRight(Effect.ignore(duplex.output.close), duplex.input.close)
    })
    // Finalizers run last-added first: the TLS socket's own (close_notify through the bridge,
    // then destroy) run before these, then the bridge lets go of the ports, then the original
    // closes (closeOriginal) or stays usable.
    // (The stream goes too: a handshake still under way, its scope ended first, hears it go and
    // fails now, not at its timeout.)
    if (spec.closeOriginal) yield* Effect.addFinalizer(() => closeOriginal)
    yield* Effect.addFinalizer(() => Effect.zipRight(stop, Effect.sync(() => stream.destroy())))
    return yield* handshakeOver(spec, stream, undefined, () => {
      Runtime.runFork(runtime)(spec.closeOriginal ? Effect.zipRight(stop, closeOriginal) : stopReading)
    })
  })
