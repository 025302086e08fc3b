/**
 * Plain TCP: connecting, listening, and the arguments both check. A listener holds the
 * connections it has accepted from the kernel until they are handed over, at most `backlog` of
 * them; beyond that it refuses (resets) new ones, so that idle or slow clients cannot make it
 * hold unbounded memory.
 *
 * @internal
 */
import { type Ssl, SslError } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as Errors from "./errors.js"

/** What is wrong with a port, if anything, for code already inside an Effect step. @internal */
export const invalidPort = (port: number, allowZero: boolean): SslError.InvalidArgumentError | undefined =>
  Number.isInteger(port) && port >= (allowZero ? 0 : 1) && port <= 65535
    ? undefined
    : new SslError.InvalidArgumentError({
      argument: "port",
      value: port,
      reason: `expected an integer from ${allowZero ? 0 : 1} to 65535`
    })

/** @internal */
export const checkPort = (port: number, allowZero: boolean): Effect.Effect<void, SslError.InvalidArgumentError> => {
  const invalid = invalidPort(port, allowZero)
  return invalid === undefined ? Effect.void : Effect.fail(invalid)
}

/** @internal */
export const isValidHostname = (hostname: unknown): hostname is string =>
  typeof hostname === "string" && hostname.length > 0 && hostname.length <= 253 && !/[\s\0/]/.test(hostname)

/** What is wrong with a host name, if anything, for code already inside an Effect step. @internal */
export const invalidHostname = (hostname: unknown): SslError.InvalidArgumentError | undefined =>
  isValidHostname(hostname) ? undefined : new SslError.InvalidArgumentError({
    argument: "hostname",
    value: hostname,
    reason: "expected a host name or IP address"
  })

/** @internal */
export const checkHostname = (hostname: unknown): Effect.Effect<string, SslError.InvalidArgumentError> => {
  const invalid = invalidHostname(hostname)
  return invalid === undefined ? Effect.succeed(hostname as string) : Effect.fail(invalid)
}

/** "[::1]" is how an IPv6 address is written beside a port; the socket API wants "::1". @internal */
export const stripBrackets = (hostname: string): string =>
  hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname

/** @internal */
export const isIp = (hostname: string): boolean => Net.isIP(stripBrackets(hostname)) !== 0

/** @internal */
export const ignore = (): void => {}

/** A TCP connection in the current scope; destroyed when the scope closes. @internal */
export const tcpConnect = (
  hostname: string,
  port: number
): Effect.Effect<Net.Socket, SslError.SslError, Scope.Scope> =>
  Effect.zipRight(
    Effect.zipRight(checkHostname(hostname), checkPort(port, false)),
    Effect.acquireRelease(
      Effect.interruptible(Effect.async<Net.Socket, SslError.SslError>((resume) => {
        // Half-open: output.close ends our side only; the peer may still answer.
        // Nagle off, as Go does: a handshake's last flight and the first reply must not wait
        // for the peer's delayed ACK (40 ms a round with clients that are not effect-ssl).
        const socket = Net.connect({ host: stripBrackets(hostname), port, allowHalfOpen: true, noDelay: true })
        const onConnect = () => {
          socket.off("error", onError)
          resume(Effect.succeed(socket))
        }
        const onError = (error: unknown) => {
          socket.off("connect", onConnect)
          socket.destroy()
          resume(Effect.fail(Errors.connectError(hostname, port, error)))
        }
        socket.once("connect", onConnect)
        socket.once("error", onError)
        return Effect.sync(() => {
          socket.off("connect", onConnect)
          socket.off("error", onError)
          socket.on("error", ignore)
          socket.destroy()
        })
      })),
      (socket) => Effect.sync(() => socket.destroy())
    )
  )

/** @internal */
export interface TcpServer<B = never> {
  readonly address: Ssl.Address
  /**
   * Waits for the next connection and takes it out of the queue. It still counts against the
   * listener's bound until `handOver` (TLS: once its handshake is done), unless it is closed
   * already (one with something begun on it stays queued when it closes: see `Listening.onClose`).
   */
  readonly take: Effect.Effect<Net.Socket, SslError.SslError>
  /** The connection now belongs to its user: it no longer counts against the bound. */
  readonly handOver: (socket: Net.Socket) => void
  /** What `begin` began on a connection just taken, as it arrived, if anything (see tcpListen); once. */
  readonly begunOn: (socket: Net.Socket) => B | undefined
  readonly close: Effect.Effect<void>
}

const owner = Symbol("@effect-ssl/node/tcp/listener")
const begun = Symbol("@effect-ssl/node/tcp/begun")

type Held = Net.Socket & { [owner]?: Listening<unknown> | undefined; [begun]?: unknown }

/** A listener's connections: queued (not yet taken) and held (taken, not yet handed over). */
class Listening<B> {
  readonly queue: Array<Net.Socket> = []
  held = 0
  closed = false
  private waiters: Array<() => void> = []

  constructor(
    readonly limit: number,
    private readonly dropEnded: boolean,
    private readonly begin: ((socket: Net.Socket) => B | undefined) | undefined
  ) {}

  // Listeners shared by every connection: `this` is the socket (see SocketPorts' owner).
  private static onClose(this: Held): void {
    const listening = this[owner]
    // A connection with something begun on it stays queued, closed or not, until it is taken:
    // what became of it (a failed handshake) is its accept's to report.
    if (listening !== undefined && !(this[begun] !== undefined && listening.queue.includes(this))) {
      listening.forget(this)
    }
  }
  private static wakeSoon(this: void, listening: Listening<unknown>): void {
    setImmediate(Listening.wakeNow, listening)
  }
  private static wakeNow(this: void, listening: Listening<unknown>): void {
    listening.wake()
  }
  private static onEnd(this: Held): void {
    // A client that half-closes before its accept can never complete a handshake.
    const listening = this[owner]
    if (listening !== undefined && listening.queue.includes(this)) this.destroy()
  }

  arrived(socket: Held): void {
    // Errors on a socket nobody has taken yet are of no interest; they only must not crash.
    socket.on("error", ignore)
    if (this.closed || this.held >= this.limit) {
      socket.resetAndDestroy()
      return
    }
    // Node remembers the peer's address once asked: ask while the socket is connected, so that
    // errors and sessions can still name a peer that has reset before its accept ran.
    void socket.remotePort
    socket[owner] = this
    this.held++
    socket.once("close", Listening.onClose)
    this.queue.push(socket)
    // An accept is waiting: what it would begin first (TLS: the handshake) begins now, here, so
    // that the client's first bytes (its ClientHello) are answered as soon as they are read, and
    // the accept is woken at the end of the next turn of the event loop (a setImmediate from a
    // setImmediate), after that turn's poll has read and answered what had come: the accept's own
    // steps (taking the connection, serve's next acceptor, the handshake's wait) then run while
    // the client works on the answer, not before the server gives it.
    if (this.begin !== undefined && this.waiters.length > 0) {
      let started: B | undefined
      try {
        started = this.begin(socket)
      } catch {
        // (nothing known throws there; if something did, in a Node callback, it would take the
        // process with it: the connection goes instead, and its slot with its close)
        socket.destroy()
        return
      }
      if (started !== undefined) {
        socket[begun] = started
        setImmediate(Listening.wakeSoon, this)
        return
      }
    }
    // ('end' comes only once what the client sent has been read: a ClientHello followed by a
    // FIN is still accepted, and fails its handshake as PeerClosed.)
    if (this.dropEnded) socket.once("end", Listening.onEnd)
    this.wake()
  }

  take(): Held | undefined {
    const socket: Held | undefined = this.queue.shift()
    if (socket === undefined) return undefined
    if (this.dropEnded) socket.off("end", Listening.onEnd)
    // (a connection kept queued after its close: see onClose)
    if (socket.destroyed && socket[begun] !== undefined) this.forget(socket)
    return socket
  }

  /** What was begun on a connection just taken, handed over once: the socket does not keep it. */
  begunOn(socket: Held): B | undefined {
    const started = socket[begun] as B | undefined
    // (it holds the whole handshake, its listeners and the connection it made: an idle
    // connection would keep them as long as it lives, 2.6 KiB of heap each)
    if (started !== undefined) socket[begun] = undefined
    return started
  }

  /** The socket leaves the listener's care: handed over, or closed. */
  forget(socket: Held): void {
    if (socket[owner] !== this) return
    socket[owner] = undefined
    socket.off("close", Listening.onClose)
    this.held--
    const i = this.queue.indexOf(socket)
    if (i >= 0) this.queue.splice(i, 1)
  }

  waitFor(wake: () => void): () => void {
    this.waiters.push(wake)
    return () => {
      const i = this.waiters.indexOf(wake)
      if (i >= 0) this.waiters.splice(i, 1)
    }
  }

  wake(): void {
    const all = this.waiters
    this.waiters = []
    for (const w of all) w()
  }

  close(): void {
    this.closed = true
    for (const socket of this.queue.splice(0)) socket.destroy()
    this.wake()
  }
}

/** A listening TCP server in the current scope. @internal */
export const tcpListen = <B = never>(
  port: number,
  options: {
    readonly hostname?: string | undefined
    readonly backlog?: number | undefined
    /**
     * TLS: a connection the client half-closes before it is taken can never complete a
     * handshake; it is dropped rather than left for an accept to wait out its timeout.
     */
    readonly dropEnded?: boolean | undefined
    /**
     * What an accept would begin with a connection, begun as soon as it arrives while an accept
     * is waiting (undefined: nothing begun, the accept begins it); see `Listening.arrived`.
     */
    readonly begin?: ((socket: Net.Socket) => B | undefined) | undefined
  }
): Effect.Effect<TcpServer<B>, SslError.SslError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* checkPort(port, true)
    if (options.hostname !== undefined) yield* checkHostname(options.hostname)
    const backlog = options.backlog ?? 511
    if (!Number.isSafeInteger(backlog) || backlog < 1) {
      return yield* new SslError.InvalidArgumentError({
        argument: "backlog",
        value: backlog,
        reason: "expected a positive integer"
      })
    }
    const listening = new Listening<B>(backlog, options.dropEnded === true, options.begin)
    const server = Net.createServer({ allowHalfOpen: true, noDelay: true })
    server.on("connection", (socket) => listening.arrived(socket))
    server.on("error", ignore)
    const hostname = options.hostname === undefined ? undefined : stripBrackets(options.hostname)
    const close = Effect.sync(() => {
      if (listening.closed) return
      server.close()
      listening.close()
    })
    yield* Effect.acquireRelease(
      Effect.async<void, SslError.SslError>((resume) => {
        const onError = (error: unknown) => resume(Effect.fail(Errors.listenError(options.hostname, port, error)))
        server.once("error", onError)
        server.listen({ port, host: hostname, backlog }, () => {
          server.off("error", onError)
          resume(Effect.void)
        })
      }),
      () => close
    )
    const bound = server.address() as Net.AddressInfo
    const address: Ssl.Address = { hostname: bound.address, port: bound.port }
    const closedError = () =>
      new SslError.ListenError({ hostname: address.hostname, port: address.port, reason: "Closed" })

    // Interruptible even where `take` runs uninterruptibly (its callers make a connection theirs
    // in the same step): only the wait can be cut short, never the taking.
    const waitForConnection = Effect.interruptible(Effect.async<void>((resume) => {
      if (listening.queue.length > 0 || listening.closed) return resume(Effect.void)
      const forget = listening.waitFor(() => resume(Effect.void))
      return Effect.sync(forget)
    }))
    const take: Effect.Effect<Net.Socket, SslError.SslError> = Effect.suspend(() => {
      if (listening.closed) return Effect.fail(closedError())
      const socket = listening.take()
      return socket === undefined ? Effect.zipRight(waitForConnection, take) : Effect.succeed(socket)
    })
    return {
      address,
      take,
      handOver: (socket) => listening.forget(socket),
      begunOn: (socket) => listening.begunOn(socket),
      close
    }
  })
