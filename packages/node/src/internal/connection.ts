/**
 * An established TLS connection: its ports, the facts of its session (read from the socket once,
 * built into a `SessionInfo` only when asked for), channel binding, and its end.
 *
 * @internal
 */
import type { Port as PortT, Ssl } from "@effect-ssl/core"
import { SslMetrics } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Crypto from "node:crypto"
import type * as Net from "node:net"
import type * as Tls from "node:tls"
import { channelBinding } from "./channelBinding.js"
import type { SocketPorts } from "./socketPorts.js"
import { describeCertificate } from "./x509.js"

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
  /** where the addresses are read: the TCP socket under a JS-stream transport, else the TLS socket */
  readonly addressed: Net.Socket | Tls.TLSSocket | undefined
}

/** @internal */
export class TlsConnection implements Ssl.Connection {
  readonly input: PortT.Input
  readonly output: PortT.Output
  // Read now, while the socket has them (its native state goes when it closes); the rest waits
  // until a session is asked for.
  private readonly protocol: string | null
  private readonly cipher: string
  private readonly local: Ssl.Address
  private readonly remote: Ssl.Address
  private info: Ssl.SessionInfo | undefined = undefined

  constructor(
    readonly socket: Tls.TLSSocket,
    readonly ports: SocketPorts,
    private readonly established: Established
  ) {
    this.input = ports.input
    this.output = ports.output
    this.protocol = socket.getProtocol()
    this.cipher = socket.getCipher()?.name ?? ""
    const addressed = established.addressed ?? socket
    this.local = { hostname: addressed.localAddress ?? "", port: addressed.localPort ?? 0 }
    this.remote = { hostname: addressed.remoteAddress ?? "", port: addressed.remotePort ?? 0 }
  }

  get session(): Effect.Effect<Ssl.SessionInfo> {
    return Effect.sync(() => this.info ??= this.sessionInfo())
  }

  private sessionInfo(): Ssl.SessionInfo {
    const { established, socket } = this
    const peerDer = established.peerDer
    let peerCertificate: Option.Option<Ssl.PeerCertificate> | undefined
    return {
      protocol: (this.protocol ?? "TLSv1.3") as Ssl.SessionInfo["protocol"],
      cipher: this.cipher,
      verified: established.verified,
      // Parsing the certificate costs more than the rest of the session together: only when read.
      get peerCertificate() {
        return peerCertificate ??= peerDer === undefined
          ? Option.none()
          : Option.some(describeCertificate(new Crypto.X509Certificate(peerDer)))
      },
      alpnProtocol: typeof socket.alpnProtocol === "string" ? Option.some(socket.alpnProtocol) : Option.none(),
      servername: established.mode === "connect"
        ? Option.fromNullable(established.servername)
        : Option.fromNullable((socket as { servername?: string | false | null }).servername || undefined),
      localAddress: this.local,
      remoteAddress: this.remote,
      resumed: established.resumed
    }
  }

  get abandon(): Effect.Effect<void> {
    return Effect.sync(() => this.ports.abandon())
  }

  channelBinding(type: Ssl.ChannelBindingType) {
    const { established } = this
    return channelBinding(
      this.socket,
      established.mode,
      type,
      established.mode === "connect" ? established.peerDer : established.ownLeafDer
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
    for (let i = leftover.length - 1; i >= 0; i--) socket.unshift(leftover[i]!)
    // (the ports' error listener stays: a socket must never be without one)
    return socket
  }

  /**
   * The end of the connection's scope: close_notify if it is still due, then the socket goes; the
   * bytes it carried are counted once, here.
   */
  get release(): Effect.Effect<void> {
    const { ports } = this
    return Effect.zipRight(
      ports.shutdown(1000),
      Effect.suspend(() => SslMetrics.recordBytes(ports.bytesRead, ports.bytesWritten))
    )
  }
}
