/**
 * An established TLS connection: its ports, the facts of its session (read from the socket once,
 * built into a `SessionInfo` only when asked for), channel binding, and its end. Its groundwork
 * (ports and addresses) may be laid before the handshake is over.
 *
 * @internal
 */
import type { Port as PortT, Ssl } from "@effect-ssl/core"
import { SslMetrics } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Net from "node:net"
import type * as Tls from "node:tls"
import { channelBinding } from "./channelBinding.js"
import { type NodeSocket, SocketPorts, type SocketPortsOptions } from "./socketPorts.js"
import { describeCertificate, parsedCertificate } from "./x509.js"

/** What the handshake established, besides the socket. @internal */
export interface Established {
  readonly mode: "connect" | "accept"
  readonly verified: boolean
  readonly resumed: boolean
  /** the peer's certificate (DER), whenever it sent one (or, resumed, when the session was made) */
  readonly peerDer: Uint8Array | undefined
  /** the server's certificate for tls-server-end-point on a server: its own leaf */
  readonly ownLeafDer: Uint8Array | undefined
  /** SNI sent (client) */
  readonly servername: string | undefined
  /** TLS on the socket's native handle, rather than through a JS stream (truncation detection, wrap) */
  readonly native: boolean
}

/**
 * What a connection needs that no handshake decides: its ports on the TLS socket and the TCP
 * addresses. A handshake over TCP lays it while it waits for the peer's next flight (see
 * handshakeIdle.ts), so that between the peer's last flight and the handler's first read there is
 * less to do. The ports hear of the socket's end and close only from the connection on, once the
 * handshake's own listeners have gone (see `SocketPorts.start`).
 *
 * @internal
 */
export class Groundwork {
  readonly ports: SocketPorts
  readonly localHost: string
  readonly localPort: number
  readonly remoteHost: string
  readonly remotePort: number
  /**
   * The protocol and cipher, on a TLS 1.3 server: it has chosen both once its answer to the
   * ClientHello is out (when its groundwork is laid, or later). A TLS 1.2 server's cipher is
   * current only from its ChangeCipherSpec on (before, node:tls names none), and a client learns
   * them at the end: theirs are read then.
   */
  readonly protocol: string | undefined
  readonly cipher: string | undefined

  constructor(
    socket: Tls.TLSSocket,
    side: "client" | "server",
    /** where the addresses are read: the TCP socket under a JS-stream transport, else the TLS socket */
    addressed: Net.Socket | Tls.TLSSocket | undefined,
    ports: Omit<SocketPortsOptions, "side" | "copyWrites">
  ) {
    // (an object literal of one shape: a spread copy gets a hidden class of its own per connection)
    this.ports = new SocketPorts(socket as unknown as NodeSocket, {
      side,
      peer: ports.peer,
      onEnd: ports.onEnd,
      shutdownOnClose: ports.shutdownOnClose,
      onBothClosed: ports.onBothClosed
    })
    const from = addressed ?? socket
    this.localHost = from.localAddress ?? ""
    this.localPort = from.localPort ?? 0
    this.remoteHost = from.remoteAddress ?? ""
    this.remotePort = from.remotePort ?? 0
    const early = side === "server" && socket.getProtocol() === "TLSv1.3"
    this.protocol = early ? "TLSv1.3" : undefined
    this.cipher = early ? negotiatedCipher(socket) : undefined
  }
}

const negotiatedProtocol = (socket: Tls.TLSSocket): string => intern(socket.getProtocol() ?? "TLSv1.3")
const negotiatedCipher = (socket: Tls.TLSSocket): string => intern(socket.getCipher()?.name ?? "")

// observability.ts's `countsItsClose` in @effect-ssl/core, registered under this name: the
// connection's release counts it closed, so that its scope holds one finalizer, not two.
const countsItsClose = Symbol.for("@effect-ssl/core/countsItsClose")

// Protocol and cipher names, one string each however many connections name them (node:tls makes a
// new string per call). Bounded: OpenSSL has a few dozen.
const names = new Map<string, string>()
const intern = (name: string): string => {
  const known = names.get(name)
  if (known !== undefined) return known
  if (names.size < 256) names.set(name, name)
  return name
}

/**
 * What a connection negotiated, as its readers see a plain object: every member an own enumerable
 * property (spread and JSON.stringify see them all), `peerCertificate` parsed only when read (it
 * costs more than the rest together). A class rather than an object literal with a getter: the
 * literal makes a getter closure per session and defines it through V8's runtime, 9 µs a
 * session beside the sockets (a profile of sequential resumed handshakes).
 */
class Session implements Ssl.SessionInfo {
  declare readonly peerCertificate: Option.Option<Ssl.PeerCertificate>
  #peerDer: Uint8Array | undefined
  #peerCertificate: Option.Option<Ssl.PeerCertificate> | undefined = undefined

  private static readonly parsedWhenRead: PropertyDescriptor = {
    get(this: Session) {
      return this.#peerCertificate ??= this.#peerDer === undefined
        ? Option.none()
        : Option.some(describeCertificate(parsedCertificate(this.#peerDer)))
    },
    enumerable: true,
    configurable: true
  }

  constructor(
    readonly protocol: Ssl.SessionInfo["protocol"],
    readonly cipher: string,
    readonly verified: boolean,
    peerDer: Uint8Array | undefined,
    readonly alpnProtocol: Option.Option<string>,
    readonly servername: Option.Option<string>,
    readonly localAddress: Ssl.Address,
    readonly remoteAddress: Ssl.Address,
    readonly resumed: boolean
  ) {
    this.#peerDer = peerDer
    Object.defineProperty(this, "peerCertificate", Session.parsedWhenRead)
  }
}

/** @internal */
export class TlsConnection implements Ssl.Connection {
  readonly input: PortT.Input
  readonly output: PortT.Output
  // Read now, while the socket has them (its native state goes when it closes); the rest waits
  // until a session is asked for. Node's strings are kept, not copies of them, and the protocol
  // and cipher names are shared between connections.
  private readonly protocol: string
  private readonly cipher: string
  private readonly localHost: string
  private readonly localPort: number
  private readonly remoteHost: string
  private readonly remotePort: number
  private info: Ssl.SessionInfo | undefined = undefined
  // What the handshake established, kept as fields: no object of its own per connection.
  private readonly mode: "connect" | "accept"
  private readonly verified: boolean
  private readonly resumed: boolean
  private readonly peerDer: Uint8Array | undefined
  private readonly ownLeafDer: Uint8Array | undefined
  private readonly servername: string | undefined
  private readonly waitForClose: boolean
  /** the scope has ended: the socket may linger while its close_notify goes out, the connection is over */
  private released = false
  /** the socket was handed to Node code (detachSocket), which reads and writes it past the ports */
  private detached = false
  /** what counts the connection closed (the open-connections gauge), run as it is released */
  private countClosed: (() => void) | undefined = undefined

  readonly ports: SocketPorts

  constructor(readonly socket: Tls.TLSSocket, established: Established, groundwork: Groundwork) {
    this.ports = groundwork.ports.start()
    this.input = this.ports.input
    this.output = this.ports.output
    this.mode = established.mode
    this.verified = established.verified
    this.resumed = established.resumed
    this.peerDer = established.peerDer
    this.ownLeafDer = established.ownLeafDer
    this.servername = established.servername
    // Over a JS stream the transport outlives the connection (wrap hands it back): its next user
    // must find TLS gone.
    this.waitForClose = !established.native
    this.protocol = groundwork.protocol ?? negotiatedProtocol(socket)
    this.cipher = groundwork.cipher ?? negotiatedCipher(socket)
    this.localHost = groundwork.localHost
    this.localPort = groundwork.localPort
    this.remoteHost = groundwork.remoteHost
    this.remotePort = groundwork.remotePort
  }

  get session(): Effect.Effect<Ssl.SessionInfo> {
    return Effect.sync(() => this.info ??= this.sessionInfo())
  }

  private sessionInfo(): Ssl.SessionInfo {
    const { socket } = this
    return new Session(
      this.protocol as Ssl.SessionInfo["protocol"],
      this.cipher,
      this.verified,
      this.peerDer,
      typeof socket.alpnProtocol === "string" ? Option.some(socket.alpnProtocol) : Option.none(),
      this.mode === "connect"
        ? Option.fromNullable(this.servername)
        : Option.fromNullable((socket as { servername?: string | false | null }).servername || undefined),
      { hostname: this.localHost, port: this.localPort },
      { hostname: this.remoteHost, port: this.remotePort },
      this.resumed
    )
  }

  [countsItsClose](countClosed: () => void): void {
    if (this.released) countClosed()
    else this.countClosed = countClosed
  }

  get abandon(): Effect.Effect<void> {
    return Effect.sync(() => this.ports.abandon())
  }

  channelBinding(type: Ssl.ChannelBindingType) {
    return channelBinding(
      this.socket,
      this.released,
      this.mode,
      type,
      this.mode === "connect" ? this.peerDer : this.ownLeafDer
    )
  }

  /**
   * Hands the TLS socket itself to Node code that reads and writes it (node:http): the ports stop
   * listening, and what they had read and not handed out goes back into the socket, paused. The
   * connection's scope still destroys the socket when it ends.
   */
  detachSocket(): Tls.TLSSocket {
    const { socket } = this
    const leftover = this.ports.detach()
    this.detached = true
    for (let i = leftover.length - 1; i >= 0; i--) socket.unshift(leftover[i]!)
    // (the ports' error listener stays: a socket must never be without one)
    return socket
  }

  /**
   * The end of the connection's scope: close_notify if it is still due, then the socket goes (on
   * its own TCP socket the scope does not wait for that: the socket is closed within a second
   * whatever the peer does); the bytes it carried are counted once, here, and the connection is
   * counted closed (the open-connections gauge: `countsItsClose`). A detached socket's
   * own counts are the application's bytes, the ports' included: node:tls counts the plaintext
   * it hands out and takes in, and keeps both counts once the socket is closed.
   */
  get release(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.released = true
      const { countClosed } = this
      if (countClosed !== undefined) {
        this.countClosed = undefined
        countClosed()
      }
      const waiting = this.ports.shutdown(1000, this.waitForClose)
      return waiting === undefined
        ? this.recordBytes()
        : Effect.zipRight(waiting, Effect.suspend(() => this.recordBytes()))
    })
  }

  private recordBytes(): Effect.Effect<void> {
    const { ports, socket } = this
    return this.detached
      ? SslMetrics.recordBytes(socket.bytesRead, socket.bytesWritten)
      : SslMetrics.recordBytes(ports.bytesRead, ports.bytesWritten)
  }
}
