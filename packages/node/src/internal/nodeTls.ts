/**
 * Everything that touches node:tls and node:net. Node's callbacks, state flags and the socket
 * that can be "connected but unauthorized" stay in here; what leaves is Effects and typed errors.
 *
 * @internal
 */
import type { Port as PortT, SslContext as SslContextT } from "@effect-ssl/core"
import { Protocol, Ssl, SslContext, SslError } from "@effect-ssl/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as NodeStream from "node:stream"
import * as Tls from "node:tls"
import * as Errors from "./errors.js"
import { type NodeSocket, SocketPorts } from "./socketPorts.js"

// ---------------------------------------------------------------------------------------------
// Secure contexts

interface Compiled {
  readonly version: number
  readonly secureContext: Tls.SecureContext
}

const compiled = new WeakMap<SslContextT.SslContext, Compiled>()

const contextFailure = (error: unknown) =>
  new SslError.InvalidArgumentError({
    argument: "context",
    value: "SslContext",
    reason: `OpenSSL rejected its settings: ${error instanceof Error ? error.message : String(error)}`
  })

/** The native context for an SslContext, rebuilt only when the context changed. @internal */
export const secureContextFor = (
  context: SslContextT.SslContext
): Effect.Effect<Tls.SecureContext, SslError.InvalidArgumentError> =>
  Effect.suspend(() => {
    const state = context.state
    const cached = compiled.get(context)
    if (cached !== undefined && cached.version === state.version) return Effect.succeed(cached.secureContext)
    return Effect.try({
      try: () => {
        const roots = state.roots.map((c) => c.pem)
        const ca = roots.length === 0
          ? undefined
          : state.useDefaultTrust
          ? [...Tls.rootCertificates, ...roots]
          : roots
        const secureContext = Tls.createSecureContext({
          minVersion: state.protocol.minVersion,
          maxVersion: state.protocol.maxVersion,
          // TLS 1.0/1.1 sign with SHA-1, which OpenSSL 3 only allows at security level 0.
          ...(state.protocol.legacy ? { ciphers: "DEFAULT@SECLEVEL=0" } : {}),
          ...(state.chain.length > 0 ? { cert: state.chain.map((c) => c.pem).join("\n") } : {}),
          ...(state.key !== undefined ? { key: state.key.pem } : {}),
          ...(ca !== undefined ? { ca } : {})
        })
        compiled.set(context, { version: state.version, secureContext })
        return secureContext
      },
      catch: contextFailure
    })
  })

// ---------------------------------------------------------------------------------------------
// Arguments

/** @internal */
export const checkPort = (
  port: number,
  allowZero: boolean
): Effect.Effect<void, SslError.InvalidArgumentError> =>
  Number.isInteger(port) && port >= (allowZero ? 0 : 1) && port <= 65535
    ? Effect.void
    : Effect.fail(
      new SslError.InvalidArgumentError({
        argument: "port",
        value: port,
        reason: `expected an integer from ${allowZero ? 0 : 1} to 65535`
      })
    )

/** @internal */
export const checkHostname = (hostname: unknown): Effect.Effect<string, SslError.InvalidArgumentError> =>
  typeof hostname === "string" && hostname.length > 0 && hostname.length <= 253 && !/[\s\0/]/.test(hostname)
    ? Effect.succeed(hostname)
    : Effect.fail(
      new SslError.InvalidArgumentError({ argument: "hostname", value: hostname, reason: "expected a host name or IP address" })
    )

const stripBrackets = (hostname: string) =>
  hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname

// ---------------------------------------------------------------------------------------------
// TCP

/** A TCP connection in the current scope; destroyed when the scope closes. @internal */
export const tcpConnect = (
  hostname: string,
  port: number
): Effect.Effect<Net.Socket, SslError.SslError, Scope.Scope> =>
  Effect.zipRight(
    Effect.zipRight(checkHostname(hostname), checkPort(port, false)),
    Effect.acquireRelease(
      Effect.interruptible(Effect.async<Net.Socket, SslError.SslError>((resume) => {
        const socket = Net.connect({ host: stripBrackets(hostname), port })
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

const ignore = () => {}

/** @internal */
export interface TcpServer {
  readonly address: Ssl.Address
  /** Waits for the next connection; it belongs to the current scope once taken. */
  readonly accept: Effect.Effect<Net.Socket, SslError.SslError, Scope.Scope>
  readonly close: Effect.Effect<void>
}

/** A listening TCP server in the current scope. @internal */
export const tcpListen = (
  port: number,
  options: { readonly hostname?: string | undefined; readonly backlog?: number | undefined }
): Effect.Effect<TcpServer, SslError.SslError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* checkPort(port, true)
    if (options.hostname !== undefined) yield* checkHostname(options.hostname)
    const backlog = options.backlog ?? 511
    if (!Number.isInteger(backlog) || backlog < 0) {
      return yield* new SslError.InvalidArgumentError({
        argument: "backlog",
        value: backlog,
        reason: "expected a non-negative integer"
      })
    }
    const pending: Array<Net.Socket> = []
    const live = new Set<Net.Socket>()
    const waiters = new Set<() => void>()
    let closed = false
    const wake = () => {
      const all = Array.from(waiters)
      waiters.clear()
      for (const w of all) w()
    }
    const server = Net.createServer()
    server.on("connection", (socket) => {
      // Errors on a socket nobody has accepted yet are of no interest; they only must not crash.
      socket.on("error", ignore)
      if (closed) return void socket.destroy()
      live.add(socket)
      socket.once("close", () => {
        live.delete(socket)
        const i = pending.indexOf(socket)
        if (i >= 0) pending.splice(i, 1)
      })
      pending.push(socket)
      wake()
    })
    server.on("error", ignore)
    const hostname = options.hostname === undefined ? undefined : stripBrackets(options.hostname)
    const close = Effect.sync(() => {
      if (closed) return
      closed = true
      server.close()
      for (const socket of pending) socket.destroy()
      pending.length = 0
      wake()
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

    const waitForConnection: Effect.Effect<void, SslError.SslError> = Effect.suspend(() => {
      if (closed) {
        return Effect.fail(new SslError.ListenError({ hostname: address.hostname, port: address.port, reason: "Closed" }))
      }
      if (pending.length > 0) return Effect.void
      return Effect.zipRight(
        Effect.async<void>((resume) => {
          const w = () => resume(Effect.void)
          waiters.add(w)
          return Effect.sync(() => {
            waiters.delete(w)
          })
        }),
        waitForConnection
      )
    })
    const accept: Effect.Effect<Net.Socket, SslError.SslError, Scope.Scope> = Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(waitForConnection), () => {
        const socket = pending.shift()
        if (socket === undefined) return accept
        live.delete(socket)
        return Effect.as(Effect.addFinalizer(() => Effect.sync(() => socket.destroy())), socket)
      })
    )
    return { address, accept, close }
  })

// ---------------------------------------------------------------------------------------------
// Plain ports over a TCP socket, and TLS over anything

const SocketTypeId = Symbol.for("@effect-ssl/node/NodeSocket")

interface SocketDuplex extends PortT.Duplex {
  readonly [SocketTypeId]: SocketPorts
}

const hasSocket = (duplex: PortT.Duplex): duplex is SocketDuplex => SocketTypeId in duplex

/** Plain ports over a TCP socket, for STARTTLS: wrapping them later uses the socket itself. @internal */
export const plainDuplex = (socket: Net.Socket): PortT.Duplex => {
  const ports = new SocketPorts(socket, {
    mapError: Errors.ioError,
    shutdownOnClose: true
  })
  return { input: ports.input, output: ports.output, [SocketTypeId]: ports } as SocketDuplex
}

/**
 * A Node Duplex stream over a Port.Duplex, for TLS over ports that are not sockets. Reads run on
 * their own fiber; interrupting it loses no bytes, so the ports stay usable after TLS ends.
 */
const bridge = (duplex: PortT.Duplex, runtime: Runtime.Runtime<never>): NodeStream.Duplex => {
  let reader: Fiber.RuntimeFiber<void, never> | undefined
  const stream: NodeStream.Duplex = new NodeStream.Duplex({
    read() {
      if (reader !== undefined) return
      reader = Runtime.runFork(runtime)(
        Effect.matchEffect(duplex.input.read(), {
          onFailure: (error) =>
            Effect.sync(() => {
              reader = undefined
              stream.destroy(error)
            }),
          onSuccess: (chunk) =>
            Effect.sync(() => {
              reader = undefined
              if (Option.isNone(chunk)) stream.push(null)
              else stream.push(chunk.value)
            })
        })
      )
    },
    write(chunk: Uint8Array, _encoding, callback) {
      Runtime.runCallback(runtime)(duplex.output.write(chunk), {
        onExit: (exit) => callback(Exit.isSuccess(exit) ? null : new Error(String(Exit.causeOption(exit))))
      })
    },
    final(callback) {
      callback()
    },
    destroy(error, callback) {
      const fiber = reader
      reader = undefined
      if (fiber !== undefined) Runtime.runFork(runtime)(Fiber.interrupt(fiber))
      callback(error)
    }
  })
  stream.on("error", ignore)
  return stream
}

interface SecureOptions {
  readonly mode: "connect" | "accept"
  readonly context: SslContextT.SslContext
  /** host name to send as SNI and to verify ("connect") */
  readonly hostname: string | undefined
  /** the peer as shown in error messages */
  readonly peer: string | undefined
  readonly shutdownOnClose: boolean
  /** called when both TLS ports are closed */
  readonly onBothClosed?: (() => void) | undefined
}

type Transport = { readonly kind: "socket"; readonly socket: Net.Socket } | {
  readonly kind: "stream"
  readonly stream: NodeStream.Duplex
}

const isIp = (hostname: string) => Net.isIP(stripBrackets(hostname)) !== 0

const distinguishedName = (text: string): string =>
  text.split("\n").filter((line) => line.length > 0).map((line) => `/${line}`).join("")

const peerCertificate = (socket: Tls.TLSSocket): Option.Option<Ssl.PeerCertificate> => {
  const x509 = socket.getPeerX509Certificate()
  if (x509 === undefined) return Option.none()
  return Option.some({
    subject: distinguishedName(x509.subject),
    issuer: distinguishedName(x509.issuer),
    validFrom: new Date(x509.validFrom),
    validTo: new Date(x509.validTo),
    fingerprint256: x509.fingerprint256,
    subjectAltNames: x509.subjectAltName === undefined ? [] : x509.subjectAltName.split(", ")
  })
}

// Node keeps OpenSSL's verdict on a server-side socket in its handle; the public API only
// exposes it for sockets a tls.Server made.
const serverVerifyError = (socket: Tls.TLSSocket): string | undefined => {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => { code?: string } | null } })._handle
  const error = handle?.verifyError?.()
  return error ? (error.code ?? "UNKNOWN") : undefined
}

/** The TLS handshake over a transport; the connection lives as long as the current scope. @internal */
export const secure = (
  transport: Transport,
  options: SecureOptions
): Effect.Effect<Ssl.Connection, SslError.SslError, Scope.Scope> =>
  Effect.gen(function*() {
    const { context, mode } = options
    const side = mode === "connect" ? "client" : "server"
    const secureContext = yield* secureContextFor(context)
    const timeout = yield* Ssl.HandshakeTimeout
    const state = context.state
    const hostname = options.hostname === undefined ? undefined : stripBrackets(options.hostname)
    const servername = mode === "connect" && hostname !== undefined && !isIp(hostname) ? hostname : undefined
    const raw = transport.kind === "socket" ? transport.socket : transport.stream

    const socket = yield* Effect.acquireRelease(
      Effect.sync(() =>
        mode === "connect"
          ? Tls.connect({
            socket: raw,
            secureContext,
            rejectUnauthorized: false,
            checkServerIdentity: () => undefined,
            ...(servername !== undefined ? { servername } : {})
          })
          : new Tls.TLSSocket(raw, {
            isServer: true,
            secureContext,
            requestCert: state.verify,
            rejectUnauthorized: state.verify
          })
      ),
      (socket) => Effect.sync(() => socket.destroy())
    )
    const ports = new SocketPorts(socket as unknown as NodeSocket, {
      mapError: Errors.ioError,
      shutdownOnClose: options.shutdownOnClose,
      onBothClosed: options.onBothClosed
    })
    yield* Effect.addFinalizer(() => ports.shutdown(1000))

    yield* Effect.async<void, SslError.SslError>((resume) => {
      const event = mode === "connect" ? "secureConnect" : "secure"
      const cleanup = () => {
        socket.off(event, onSecure)
        socket.off("error", onError)
        socket.off("close", onClose)
      }
      const onSecure = () => {
        cleanup()
        resume(Effect.void)
      }
      const onError = (error: unknown) => {
        cleanup()
        resume(Effect.fail(Errors.handshakeError(side, options.peer, error)))
      }
      const onClose = () => {
        cleanup()
        resume(Effect.fail(new SslError.HandshakeError({ reason: "PeerClosed", side, peer: options.peer })))
      }
      socket.once(event, onSecure)
      socket.on("error", onError)
      socket.once("close", onClose)
      return Effect.sync(cleanup)
    }).pipe(
      Effect.interruptible,
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new SslError.HandshakeError({
            reason: "Timeout",
            side,
            peer: options.peer,
            cause: `no handshake within ${Duration.format(timeout)}`
          })
      })
    )

    // Verification happens here, after OpenSSL's handshake, so that every verdict is typed.
    let verified = false
    if (mode === "connect") {
      const chainOk = socket.authorized
      let hostError: Error | undefined
      if (chainOk && hostname !== undefined) {
        hostError = Tls.checkServerIdentity(hostname, socket.getPeerCertificate())
      }
      verified = chainOk && hostname !== undefined && hostError === undefined
      if (state.verify && !verified) {
        if (!chainOk) {
          const code = String(socket.authorizationError ?? "UNKNOWN")
          return yield* Errors.verifyError(side, options.peer, code, socket.authorizationError)
        }
        if (hostname === undefined) {
          return yield* new SslError.InvalidArgumentError({
            argument: "hostname",
            value: undefined,
            reason: "a host name is needed to verify the server; pass one, or turn verification off"
          })
        }
        return yield* Errors.verifyError(side, options.peer, "ERR_TLS_CERT_ALTNAME_INVALID", hostError)
      }
    } else if (state.verify) {
      const code = serverVerifyError(socket)
      if (code !== undefined) return yield* Errors.verifyError(side, options.peer, code)
      verified = socket.getPeerX509Certificate() !== undefined
    }

    const session: Ssl.SessionInfo = {
      protocol: (socket.getProtocol() ?? "TLSv1.3") as Ssl.SessionInfo["protocol"],
      cipher: socket.getCipher()?.name ?? "",
      verified,
      peerCertificate: peerCertificate(socket),
      alpnProtocol: typeof socket.alpnProtocol === "string" ? Option.some(socket.alpnProtocol) : Option.none(),
      servername: mode === "connect"
        ? Option.fromNullable(servername)
        : Option.fromNullable((socket as { servername?: string | false | null }).servername || undefined),
      localAddress: { hostname: socket.localAddress ?? "", port: socket.localPort ?? 0 },
      remoteAddress: { hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 }
    }
    return {
      input: ports.input,
      output: ports.output,
      session: Effect.succeed(session),
      abandon: Effect.sync(() => ports.abandon())
    } satisfies Ssl.Connection
  })

/** TLS over a plain TCP socket the current scope owns. @internal */
export const secureSocket = (socket: Net.Socket, options: SecureOptions) =>
  secure({ kind: "socket", socket }, options)

/** TLS over any Port.Duplex: a socket's own ports use the socket itself, anything else a bridge. @internal */
export const secureDuplex = (
  duplex: PortT.Duplex,
  options: SecureOptions & { readonly closeOriginal: boolean }
): Effect.Effect<Ssl.Connection, SslError.SslError, Scope.Scope> =>
  Effect.gen(function*() {
    if (hasSocket(duplex)) {
      const plain = duplex[SocketTypeId]
      const socket = plain.socket as Net.Socket
      const leftover = plain.detach()
      for (let i = leftover.length - 1; i >= 0; i--) socket.unshift(leftover[i]!)
      const connection = yield* secure({ kind: "socket", socket }, options)
      plain.releaseErrorListener()
      return connection
    }
    const runtime = yield* Effect.runtime<never>()
    const stream = bridge(duplex, runtime)
    let closedOriginal = false
    const closeOriginal = Effect.suspend(() => {
      if (closedOriginal) return Effect.void
      closedOriginal = true
      return Effect.zipRight(Effect.ignore(duplex.output.close), duplex.input.close)
    })
    const connection = yield* secure({ kind: "stream", stream }, {
      ...options,
      onBothClosed: () => {
        if (options.closeOriginal) Runtime.runFork(runtime)(closeOriginal)
      }
    })
    if (options.closeOriginal) yield* Effect.addFinalizer(() => closeOriginal)
    return connection
  })

/** @internal */
export const contextFor = <K extends "client" | "server">(
  kind: K,
  given: SslContextT.SslContext | Protocol.Protocol | undefined
): Effect.Effect<K extends "client" ? SslContextT.ClientContext : SslContextT.ServerContext, SslError.SslError> => {
  if (given === undefined || typeof given === "string") {
    return (kind === "client" ? SslContext.makeClient(given) : SslContext.makeServer(given)) as never
  }
  if (!SslContext.isSslContext(given) || given.kind !== kind) {
    return Effect.fail(
      new SslError.InvalidArgumentError({
        argument: "context",
        value: SslContext.isSslContext(given) ? `${given.kind} context` : given,
        reason: `expected a ${kind} context or a protocol name`
      })
    ) as never
  }
  return Effect.succeed(given) as never
}

/** Whether node:tls is usable here (it is missing from Node builds without OpenSSL). @internal */
export const probe = (): Option.Option<string> => {
  try {
    Tls.createSecureContext({})
    void Protocol.maxClientProtocol
    return Option.none()
  } catch (error) {
    return Option.some(error instanceof Error ? error.message : String(error))
  }
}
