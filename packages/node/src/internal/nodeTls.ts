/**
 * Everything that touches node:tls and node:net. Node's callbacks, state flags and the socket
 * that can be "connected but unauthorized" stay in here; what leaves is Effects and typed errors.
 *
 * @internal
 */
import type { Port as PortT, SslContext as SslContextT } from "@effect-ssl/core"
import { Protocol, Ssl, SslContext, SslError } from "@effect-ssl/core"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as NodeStream from "node:stream"
import * as Tls from "node:tls"
import { parseClientHelloAlpn } from "./clientHello.js"
import * as Errors from "./errors.js"
import { type NodeSocket, SocketFeed, SocketPorts, watchEnd } from "./socketPorts.js"
import { describeCertificate, identityOptions } from "./x509.js"

// ---------------------------------------------------------------------------------------------
// Secure contexts

interface Compiled {
  readonly version: number
  readonly secureContext: Tls.SecureContext
  /**
   * Server side, when suggested CAs that are not roots joined the native trust store (see below):
   * the SHA-256 fingerprints of the roots, the only anchors a client chain may end at.
   */
  readonly anchors: ReadonlySet<string> | undefined
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
): Effect.Effect<Tls.SecureContext, SslError.InvalidArgumentError> => Effect.map(compile(context), (c) => c.secureContext)

const defaultSuites = Tls.DEFAULT_CIPHERS.split(":").filter((c) => c.startsWith("TLS_")).join(":")
const defaultList = Tls.DEFAULT_CIPHERS.split(":").filter((c) => !c.startsWith("TLS_")).join(":")

// Node takes TLS 1.3 suites and the TLS 1.2 list in one string, and a string with only one of the
// two switches the other protocol off: so whichever the context leaves unset keeps Node's default.
const cipherOption = (state: SslContextT.State): { readonly ciphers: string } => {
  const list = state.ciphers ?? (state.protocol.legacy ? "DEFAULT" : defaultList)
  // TLS 1.0/1.1 sign with SHA-1, which OpenSSL 3 only allows at security level 0. Otherwise
  // security level 2 (112-bit keys: RSA 2048, P-224 and up), the `openssl` command's default on
  // Debian and Ubuntu, unless the cipher list names a level itself: Node's OpenSSL is built at
  // level 1, where an RSA-1024 server certificate verifies that `openssl s_client` refuses.
  const level = state.protocol.legacy ? "@SECLEVEL=0" : /@SECLEVEL=/i.test(list) ? "" : "@SECLEVEL=2"
  return { ciphers: `${state.cipherSuites ?? defaultSuites}:${list}${level}` }
}

const compile = (context: SslContextT.SslContext): Effect.Effect<Compiled, SslError.InvalidArgumentError> =>
  Effect.suspend(() => {
    const state = context.state
    const cached = compiled.get(context)
    if (cached !== undefined && cached.version === state.version) return Effect.succeed(cached)
    return Effect.try({
      try: () => {
        const roots = state.roots.map((c) => c.pem)
        // Node names every `ca` certificate in a server's certificate request and has no separate
        // list, so suggested CAs must join the trust store to be named; `secure` then refuses
        // client chains that end at one of them rather than at a loaded root.
        const fingerprint = (c: SslContextT.Certificate) => new Crypto.X509Certificate(c.der).fingerprint256
        const rootFingerprints = new Set(state.roots.map(fingerprint))
        const suggested = context.kind === "server"
          ? state.suggestedCas.filter((c) => !rootFingerprints.has(fingerprint(c))).map((c) => c.pem)
          : []
        // A context that does not use the platform's roots trusts exactly the loaded ones (none
        // loaded: nothing), never Node's default store.
        const ca = !state.useDefaultTrust
          ? [...roots, ...suggested]
          : roots.length === 0
          ? undefined
          : [...Tls.rootCertificates, ...roots]
        const secureContext = Tls.createSecureContext({
          minVersion: state.protocol.minVersion,
          maxVersion: state.protocol.maxVersion,
          ...cipherOption(state),
          ...identityOptions(state),
          ...(ca !== undefined ? { ca } : {}),
          // OpenSSL refuses to resume a session on a server that asks for client certificates
          // unless a session id context is set (tls.Server sets one; a bare TLSSocket does not):
          // TLS 1.2 clients that cache sessions would fail every second handshake. A fresh one
          // per build also stops sessions made under older settings (roots, verify) resuming.
          ...(context.kind === "server" ? { sessionIdContext: Crypto.randomBytes(16).toString("hex") } : {})
        })
        const result: Compiled = {
          version: state.version,
          secureContext,
          anchors: suggested.length > 0 ? rootFingerprints : undefined
        }
        compiled.set(context, result)
        return result
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
  options: {
    readonly hostname?: string | undefined
    readonly backlog?: number | undefined
    /**
     * TLS: a connection the client half-closes before it is accepted can never complete a
     * handshake; it is dropped rather than left for an accept to wait out its timeout.
     */
    readonly dropEnded?: boolean | undefined
  }
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
    const server = Net.createServer({ allowHalfOpen: true, noDelay: true })
    server.on("connection", (socket) => {
      // Errors on a socket nobody has accepted yet are of no interest; they only must not crash.
      socket.on("error", ignore)
      // Node remembers the peer's address once asked: ask while the socket is connected, so that
      // errors and sessions can still name a peer that has reset before its accept ran.
      void socket.remotePort
      if (closed) return void socket.destroy()
      live.add(socket)
      socket.once("close", () => {
        live.delete(socket)
        const i = pending.indexOf(socket)
        if (i >= 0) pending.splice(i, 1)
      })
      // ('end' comes only once what the client sent has been read: a ClientHello followed by a
      // FIN is still accepted, and fails its handshake as PeerClosed.)
      if (options.dropEnded === true) {
        socket.once("end", () => {
          if (pending.includes(socket)) socket.destroy()
        })
      }
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
  /** the handshake timeout; default: the fiber's `Ssl.HandshakeTimeout` */
  readonly handshakeTimeout?: Duration.Duration | undefined
}

type Transport = { readonly kind: "socket"; readonly socket: Net.Socket; readonly feed?: SocketFeed } | {
  readonly kind: "stream"
  readonly stream: NodeStream.Duplex
}

const isIp = (hostname: string) => Net.isIP(stripBrackets(hostname)) !== 0

const peerCertificate = (x509: Crypto.X509Certificate | undefined): Option.Option<Ssl.PeerCertificate> =>
  x509 === undefined ? Option.none() : Option.some(describeCertificate(x509))

// Node keeps OpenSSL's verdict in the socket's handle; the public API only exposes it for sockets
// a tls.Server made, and for clients only its code (authorizationError), which is "UNSPECIFIED"
// for every X.509 error Node has no name for (a key too weak, say): OpenSSL's text tells those.
const nativeVerifyError = (socket: Tls.TLSSocket): { readonly code: string; readonly message: string } | undefined => {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => { code?: string; message?: string } | null } })
    ._handle
  const error = handle?.verifyError?.()
  if (!error) return undefined
  const message = typeof error.message === "string" ? error.message : ""
  return { code: Errors.verifyCode(error.code ?? "UNKNOWN", message), message }
}

// The fingerprint of the last certificate of the peer's chain as Node completes it from the trust
// store: the anchor OpenSSL verified the chain against.
const chainAnchor = (socket: Tls.TLSSocket): string => {
  let cert: Tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true)
  for (let depth = 0; cert !== undefined && depth < 32; depth++) {
    const issuer: Tls.DetailedPeerCertificate | undefined = cert.issuerCertificate
    if (issuer === undefined || issuer === cert || issuer.fingerprint256 === cert.fingerprint256) {
      return cert.fingerprint256 ?? ""
    }
    cert = issuer
  }
  return ""
}

// RFC 6125 as OpenSSL implements it: IP literals against IP alt names only; names against DNS
// alt names, or the CN when there are none.
const hostMismatch = (x509: Crypto.X509Certificate | undefined, hostname: string): string | undefined => {
  if (x509 === undefined) return "the server sent no certificate"
  const matched = isIp(hostname) ? x509.checkIP(hostname) : x509.checkHost(hostname)
  return matched === undefined ? `the certificate is for ${x509.subjectAltName ?? x509.subject}, not ${hostname}` : undefined
}

// Server-side SNI: the context's callback picks another context by the requested name. It runs
// as a fiber of its own, which the handshake interrupts when it ends first (a timeout, a reset):
// a callback that hangs must not outlive its connection.
const sniCallback = (
  callback: (servername: string) => Effect.Effect<Option.Option<SslContextT.ServerContext>>,
  runtime: Runtime.Runtime<never>,
  chosen: (context: SslContextT.ServerContext) => void,
  running: { fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined; cancelled: boolean }
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

const keyLogger = (keyLog: SslContextT.KeyLog) => (line: Buffer) => {
  try {
    if (typeof keyLog === "function") keyLog(line.toString("latin1").trimEnd())
    else Fs.appendFileSync(keyLog.file, line, { mode: 0o600 })
  } catch {
    // A broken key log must not break the connection it is observing.
  }
}

// A server that allows an ALPN offer with nothing in common reads the offer as it goes by: node:tls
// would refuse it with a fatal alert, but serves a socket that has no ALPN list without ALPN. The
// listener is put in front of node:tls's own on the transport, so it sees each chunk before TLS
// does, and the list is set (or not) before TLS takes the chunk that completes the ClientHello.
// Nothing is taken from the stream, and node:tls's own listeners see its errors and its end.
const watchAlpnOffer = (
  raw: NodeStream.Duplex,
  decide: (offered: ReadonlyArray<string> | undefined) => void
): () => void => {
  const chunks: Array<Buffer> = []
  let length = 0
  // A peer that trickles its hello is parsed again only once enough has come.
  let atLeast = 1
  const stop = () => {
    raw.off("data", onData)
  }
  const onData = (chunk: Buffer) => {
    chunks.push(chunk)
    length += chunk.length
    if (length < atLeast) return
    const seen = chunks.length === 1 ? chunk : Buffer.concat(chunks, length)
    chunks.splice(0, chunks.length, seen)
    const parsed = parseClientHelloAlpn(seen)
    if (parsed._tag === "NeedMore") {
      atLeast = parsed.atLeast
      return
    }
    stop()
    chunks.length = 0
    decide(parsed._tag === "Offered" ? parsed.protocols : undefined)
  }
  raw.prependListener("data", onData)
  return stop
}

// ALPN's wire format, as node:tls builds it from ALPNProtocols: each name after its length.
const alpnWire = (protocols: ReadonlyArray<string>): Buffer =>
  Buffer.concat(protocols.flatMap((protocol) => {
    const name = Buffer.from(protocol, "utf8")
    return [Buffer.from([name.length]), name]
  }))

/** The TLS handshake over a transport; the connection lives as long as the current scope. @internal */
export const secure = (
  transport: Transport,
  options: SecureOptions
): Effect.Effect<Ssl.Connection, SslError.SslError, Scope.Scope> =>
  Effect.gen(function*() {
    const { context, mode } = options
    const side = mode === "connect" ? "client" : "server"
    const { anchors, secureContext } = yield* compile(context)
    const timeout = options.handshakeTimeout ?? (yield* Ssl.HandshakeTimeout)
    const runtime = yield* Effect.runtime<never>()
    const state = context.state
    // The context whose certificate the server presents: this one, unless SNI picked another.
    let served: SslContextT.SslContext = context
    const hostname = options.hostname === undefined ? undefined : stripBrackets(options.hostname)
    const servername = mode === "connect" && hostname !== undefined && !isIp(hostname) ? hostname : undefined
    if (mode === "connect" && state.verify && hostname === undefined) {
      // Known before a byte is sent: without a name the server cannot be verified.
      return yield* new SslError.InvalidArgumentError({
        argument: "hostname",
        value: undefined,
        reason: "a host name is needed to verify the server; pass one, or turn verification off"
      })
    }
    // node:tls reads a socket through a JS stream, not its native handle, so that a bare TCP FIN
    // can be told from a close_notify (see SocketFeed and watchEnd).
    const raw = transport.kind === "socket" ? (transport.feed ?? new SocketFeed(transport.socket)) : transport.stream
    const end = watchEnd(raw)

    const sni: { fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined; cancelled: boolean } = {
      fiber: undefined,
      cancelled: false
    }
    const watchOffer = mode === "accept" && state.alpn.length > 0 && state.alpnAllowNoMatch
    let stopWatch: (() => void) | undefined
    // One finalizer per connection. A connection that never got established (handshake or
    // verification failed) is torn down without close_notify: an orderly TLS close would tell the
    // peer all was well.
    const secured = yield* Effect.acquireRelease(
      Effect.sync((): Secured => {
        const tls = mode === "connect"
          ? Tls.connect({
            socket: raw,
            secureContext,
            rejectUnauthorized: false,
            checkServerIdentity: () => undefined,
            ...(servername !== undefined ? { servername } : {}),
            ...(state.alpn.length > 0 ? { ALPNProtocols: [...state.alpn] } : {})
          })
          : new Tls.TLSSocket(raw, {
            isServer: true,
            secureContext,
            // try-verify asks for a certificate without requiring one.
            requestCert: state.verify || state.tryVerify,
            rejectUnauthorized: state.verify,
            ...(state.alpn.length > 0 && !watchOffer ? { ALPNProtocols: [...state.alpn] } : {}),
            ...(state.serverNameCallback !== undefined
              ? { SNICallback: sniCallback(state.serverNameCallback, runtime, (c) => (served = c), sni) }
              : {})
          })
        end.attach(tls)
        if (watchOffer) {
          stopWatch = watchAlpnOffer(raw, (offered) => {
            if (offered === undefined || offered.some((protocol) => state.alpn.includes(protocol))) {
              ;(tls as unknown as { _handle: { setALPNProtocols(wire: Buffer): void } | null })._handle
                ?.setALPNProtocols(alpnWire(state.alpn))
            }
          })
        }
        if (raw instanceof SocketFeed) tls.once("end", () => raw.hold())
        if (state.keyLog !== undefined) tls.on("keylog", keyLogger(state.keyLog))
        const ports = new SocketPorts(tls as unknown as NodeSocket, {
          mapError: ioErrorMapper(side, options.peer),
          onEnd: end.onEnd,
          shutdownOnClose: options.shutdownOnClose,
          onBothClosed: options.onBothClosed
        })
        return { socket: tls, ports, established: false }
      }),
      releaseSecured
    )
    const { socket } = secured

    yield* Effect.async<void, SslError.SslError>((resume) => {
      const event = mode === "connect" ? "secureConnect" : "secure"
      const cleanup = () => {
        if (sni.fiber !== undefined) {
          sni.cancelled = true
          sni.fiber.unsafeInterruptAsFork(sni.fiber.id())
        }
        stopWatch?.()
        socket.off(event, onSecure)
        socket.off("error", onError)
        socket.off("close", onClose)
        socket.off("end", onClose)
        if (transport.kind === "socket") raw.off("error", onError)
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
      // A peer that half-closes before finishing its handshake never will: node:tls reports this
      // (as an error) for clients only, and a server would wait for the handshake timeout.
      socket.once("end", onClose)
      // A TCP error (a reset) before the handshake is over reaches a server-side TLS socket only as
      // its 'close' (node:tls passes transport errors of an unfinished handshake to a tls.Server,
      // which there is none of): hear it from the transport, so that a reset is told as one.
      if (transport.kind === "socket") raw.on("error", onError)
      // Interrupted: the socket goes at once (the finalizers would destroy it too, a little later).
      return Effect.sync(() => {
        cleanup()
        socket.destroy()
      })
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

    // Node 20 hands out the peer's certificate once: after the first of getPeerCertificate and
    // getPeerX509Certificate, the other (and a second call) finds nothing. So each is asked once,
    // the chain walk first.
    const anchor = mode === "accept" && anchors !== undefined ? chainAnchor(socket) : undefined
    const peerX509 = socket.getPeerX509Certificate()
    // Verification happens here, after OpenSSL's handshake, so that every verdict is typed.
    let verified = false
    if (mode === "connect") {
      const chainOk = socket.authorized
      let hostError: string | undefined
      if (chainOk && hostname !== undefined) hostError = hostMismatch(peerX509, hostname)
      verified = chainOk && hostname !== undefined && hostError === undefined
      const required = state.verify || (state.tryVerify && peerX509 !== undefined)
      if (required && !state.verifyHostname && chainOk) {
        verified = true
      } else if (required && !verified) {
        if (!chainOk) {
          const native = nativeVerifyError(socket)
          const code = native?.code ?? String(socket.authorizationError ?? "UNKNOWN")
          return yield* Errors.verifyError(side, options.peer, code, native?.message ?? socket.authorizationError)
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
    } else if (state.verify || (state.tryVerify && peerX509 !== undefined)) {
      const native = nativeVerifyError(socket)
      if (native !== undefined) return yield* Errors.verifyError(side, options.peer, native.code, native.message)
      if (anchors !== undefined && !anchors.has(anchor ?? "")) {
        return yield* Errors.verifyError(
          side,
          options.peer,
          "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
          "the client's chain ends at a suggested CA that is not a trusted root"
        )
      }
      verified = peerX509 !== undefined
    }

    // The TLS socket reads through a JS stream (no address of its own): ask the TCP socket.
    const addressed: Net.Socket | Tls.TLSSocket = transport.kind === "socket" ? transport.socket : socket
    const session: Ssl.SessionInfo = {
      protocol: (socket.getProtocol() ?? "TLSv1.3") as Ssl.SessionInfo["protocol"],
      cipher: socket.getCipher()?.name ?? "",
      verified,
      peerCertificate: peerCertificate(peerX509),
      alpnProtocol: typeof socket.alpnProtocol === "string" ? Option.some(socket.alpnProtocol) : Option.none(),
      servername: mode === "connect"
        ? Option.fromNullable(servername)
        : Option.fromNullable((socket as { servername?: string | false | null }).servername || undefined),
      localAddress: { hostname: addressed.localAddress ?? "", port: addressed.localPort ?? 0 },
      remoteAddress: { hostname: addressed.remoteAddress ?? "", port: addressed.remotePort ?? 0 },
      resumed: socket.isSessionReused()
    }
    // The server's certificate for tls-server-end-point: the peer's, kept now (node:tls hands it out
    // once), or our own chain's leaf, built only if asked for.
    secured.established = true
    return new SecuredConnection(secured, mode, session, mode === "connect" ? peerX509 : served.state.chain[0]?.der)
  })

/** A TLS socket and its ports, from the handshake to the end of the connection's scope. */
interface Secured {
  readonly socket: Tls.TLSSocket
  readonly ports: SocketPorts
  established: boolean
}

const releaseSecured = (secured: Secured): Effect.Effect<void> =>
  secured.established ? secured.ports.shutdown(1000) : Effect.sync(() => secured.socket.destroy())

const ioErrorMapper = (side: "client" | "server", peer: string | undefined) =>
(error: unknown, operation: "read" | "write"): SslError.SslError => Errors.ioError(error, operation, { side, peer })

/**
 * An established connection. Built outside `secure()`, so that what it keeps alive is what it
 * needs, not every variable of the handshake.
 */
class SecuredConnection implements Ssl.Connection {
  readonly input: PortT.Input
  readonly output: PortT.Output
  readonly session: Effect.Effect<Ssl.SessionInfo>
  readonly abandon: Effect.Effect<void>
  readonly channelBinding: Ssl.Connection["channelBinding"]

  constructor(
    secured: Secured,
    mode: "connect" | "accept",
    session: Ssl.SessionInfo,
    /** for tls-server-end-point: the peer's certificate (kept now: node:tls hands it out once), or our leaf's DER */
    serverLeaf: Crypto.X509Certificate | Uint8Array | undefined
  ) {
    const { ports, socket } = secured
    this.input = ports.input
    this.output = ports.output
    this.session = Effect.succeed(session)
    this.abandon = Effect.sync(() => ports.abandon())
    this.channelBinding = (type) =>
      channelBinding(socket, mode, type, () =>
        serverLeaf === undefined || serverLeaf instanceof Crypto.X509Certificate
          ? serverLeaf
          : new Crypto.X509Certificate(serverLeaf))
  }
}

const bindingUnavailable = (type: Ssl.ChannelBindingType, reason: string) =>
  Effect.fail(new SslError.InvalidArgumentError({ argument: "type", value: type, reason }))

// RFC 5929 4.1: the hash of the certificate's own signature algorithm, with MD5 and SHA-1
// promoted to SHA-256. The algorithm's OID appears in the DER (twice); its bytes tell it.
const signatureHashOids: ReadonlyArray<readonly [string, string]> = [
  ["2a864886f70d01010c", "sha384"], // sha384WithRSAEncryption
  ["2a864886f70d01010d", "sha512"], // sha512WithRSAEncryption
  ["2a8648ce3d040303", "sha384"], // ecdsa-with-SHA384
  ["2a8648ce3d040304", "sha512"] // ecdsa-with-SHA512
]

const endPointHash = (x509: Crypto.X509Certificate): string => {
  const hex = x509.raw.toString("hex")
  return signatureHashOids.find(([oid]) => hex.includes(`06${(oid.length / 2).toString(16).padStart(2, "0")}${oid}`))?.[1] ??
    "sha256"
}

const channelBinding = (
  socket: Tls.TLSSocket,
  mode: "connect" | "accept",
  type: Ssl.ChannelBindingType,
  serverLeaf: () => Crypto.X509Certificate | undefined
): Effect.Effect<Uint8Array, SslError.InvalidArgumentError> =>
  Effect.suspend(() => {
    switch (type) {
      case "tls-unique": {
        if (socket.getProtocol() === "TLSv1.3") return bindingUnavailable(type, "tls-unique is not defined for TLS 1.3; use tls-exporter")
        // The first Finished message of the handshake: the client's, on a full handshake.
        const finished = mode === "connect" ? socket.getFinished() : socket.getPeerFinished()
        return finished === undefined ? bindingUnavailable(type, "no handshake yet") : Effect.succeed(new Uint8Array(finished))
      }
      case "tls-exporter":
        // A destroyed socket has no TLS state left to export from.
        if (socket.destroyed) return bindingUnavailable(type, "the connection is closed")
        return Effect.try({
          try: () => new Uint8Array(socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0))),
          catch: (error) =>
            new SslError.InvalidArgumentError({ argument: "type", value: type, reason: String(error) })
        })
      case "tls-server-end-point": {
        const certificate = serverLeaf()
        if (certificate === undefined) return bindingUnavailable(type, "the server has no certificate")
        return Effect.succeed(new Uint8Array(Crypto.createHash(endPointHash(certificate)).update(certificate.raw).digest()))
      }
      default:
        return bindingUnavailable(type, "expected tls-unique, tls-exporter or tls-server-end-point")
    }
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
      const feed = new SocketFeed(socket, !options.closeOriginal)
      // Runs after the TLS session's own finalizers (close_notify, destroy): the socket goes back
      // to the plain ports, open and usable, with whatever the peer sent after TLS; or, closed
      // with the connection, it takes the plain ports with it.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => options.closeOriginal ? plain.closeWithTransport() : plain.reattach(feed.release()))
      )
      const connection = yield* secure({ kind: "socket", socket, feed }, options)
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
    if (options.closeOriginal) yield* Effect.addFinalizer(() => closeOriginal)
    yield* Effect.addFinalizer(() => stop)
    return yield* secure({ kind: "stream", stream }, {
      ...options,
      onBothClosed: () => {
        Runtime.runFork(runtime)(options.closeOriginal ? Effect.zipRight(stop, closeOriginal) : stopReading)
      }
    })
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

/** OpenSSL's own verdict on a cipher string, for SslContext.CipherValidator. @internal */
export const validateCiphers = (kind: "ciphers" | "cipherSuites", value: string): string | undefined => {
  if (kind === "cipherSuites" && value.split(":").some((suite) => !suite.startsWith("TLS_"))) {
    return "TLS 1.3 suites are named TLS_…, e.g. TLS_AES_256_GCM_SHA384 (use setCiphers for TLS 1.2 lists)"
  }
  try {
    Tls.createSecureContext({ ciphers: value })
    return undefined
  } catch (error) {
    return `OpenSSL rejects it (${error instanceof Error ? error.message : String(error)})`
  }
}
