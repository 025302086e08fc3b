/**
 * The JS-stream transport: node:tls reads and writes a TCP socket through a JavaScript Duplex
 * instead of taking over its native handle. It costs about a fifth of the throughput, and is used
 * only where its one gain is needed: telling a TLS close_notify from a bare TCP FIN (contexts with
 * `setDetectTruncation`), and STARTTLS over a socket that must be handed back afterwards.
 *
 * @internal
 */
import { SslError } from "@effect-ssl/core"
import * as Stream from "node:stream"
import { type NodeSocket, type Owned, owner, ownersOf } from "./socketPorts.js"

/**
 * A plain Duplex over a connected socket, for node:tls to read and write through instead of
 * taking over the socket's native handle.
 *
 * Why: over a native handle, Node's TLS reports a TLS close_notify and a bare TCP FIN alike, as
 * an 'end' (its C++ layer never tells JS which one it saw), so a truncated stream would look
 * complete. Through a JS stream, the transport's own end is visible (see `watchEnd`). The
 * buffers pass by reference; the socket's bytes are not copied here.
 *
 * @internal
 */
export class SocketFeed extends Stream.Duplex {
  // After the peer's close_notify, what arrives is plaintext for whoever takes the socket back.
  private holding = false
  private held: Array<Uint8Array> = []
  // The TLS layer may write again as soon as the socket has room, not only once its last bytes
  // reached the kernel: waiting for each write's callback would leave one write in flight.
  private pendingWrite: ((error?: Error | null) => void) | undefined = undefined

  // The socket's listeners, the same functions for every connection (see `owner`).
  private static onData(this: Owned, chunk: Uint8Array): void {
    this[owner].feed?.socketData(chunk)
  }
  private static onEnd(this: Owned): void {
    this[owner].feed?.push(null)
  }
  private static onError(this: Owned, error: unknown): void {
    this[owner].feed?.destroy(error instanceof Error ? error : new Error(String(error)))
  }
  private static onClose(this: Owned): void {
    this[owner].feed?.socketClose()
  }
  private static onDrain(this: Owned): void {
    this[owner].feed?.socketDrain()
  }

  constructor(
    readonly socket: NodeSocket,
    /** the socket outlives the TLS session, which must neither end nor destroy it */
    private readonly keepSocket = false
  ) {
    // The readable side holds little: the TLS layer above keeps its own buffer.
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024 })
    ownersOf(socket).feed = this
    socket.on("data", SocketFeed.onData)
    socket.on("end", SocketFeed.onEnd)
    socket.on("error", SocketFeed.onError)
    socket.on("close", SocketFeed.onClose)
    socket.on("drain", SocketFeed.onDrain)
    // As for SocketPorts: an end that came before this feed listened.
    if (socket.destroyed) this.destroy()
    else if (socket.readableEnded) this.push(null)
  }

  private socketData(chunk: Uint8Array): void {
    if (this.holding) {
      this.held.push(chunk)
      this.socket.pause()
    } else if (!this.push(chunk)) this.socket.pause()
  }

  /** The TLS session has ended (close_notify received): keep later bytes out of it. */
  hold(): void {
    this.holding = true
  }

  /**
   * Lets go of the socket without ending it, handing back what it read that TLS did not take
   * (plaintext the peer sent after its close_notify).
   */
  release(): Array<Uint8Array> {
    this.unlisten()
    this.socket.pause()
    const leftover: Array<Uint8Array> = []
    if (!this.destroyed) {
      for (let chunk = this.read(); chunk !== null; chunk = this.read()) leftover.push(chunk as Uint8Array)
    }
    for (const chunk of this.held) leftover.push(chunk)
    this.held = []
    return leftover
  }

  private unlisten(): void {
    this.socket.off("drain", SocketFeed.onDrain)
    this.socket.off("data", SocketFeed.onData)
    this.socket.off("end", SocketFeed.onEnd)
    this.socket.off("close", SocketFeed.onClose)
    this.socket.off("error", SocketFeed.onError)
    const owners = ownersOf(this.socket)
    if (owners.feed === this) owners.feed = undefined
  }

  private socketClose(): void {
    // A socket that closes without 'end' or 'error' (destroyed under us) ends the feed too.
    if (!this.destroyed) this.destroy()
  }

  override _read(): void {
    this.socket.resume()
  }

  private socketDrain(): void {
    const callback = this.pendingWrite
    this.pendingWrite = undefined
    callback?.()
  }

  private afterWrite(accepted: boolean, callback: (error?: Error | null) => void): void {
    if (accepted) return callback()
    this.pendingWrite = callback
  }

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.afterWrite(this.socket.write(chunk), callback)
  }

  override _writev(
    chunks: Array<{ chunk: Uint8Array; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void
  ): void {
    const socket = this.socket as NodeSocket & { cork(): void; uncork(): void }
    socket.cork()
    let accepted = true
    for (const { chunk } of chunks) accepted = socket.write(chunk)
    socket.uncork()
    this.afterWrite(accepted, callback)
  }

  override _final(callback: (error?: Error | null) => void): void {
    // Half-close: the TLS layer above has written its close_notify; now the TCP FIN.
    if (this.keepSocket || this.socket.destroyed || !this.socket.writable) return callback()
    this.socket.end(() => callback())
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.pendingWrite = undefined
    if (this.keepSocket) {
      // Nothing may lose the socket's data until the plain ports take it back.
      this.holding = true
      this.socket.pause()
      return callback(error)
    }
    this.unlisten()
    // Errors of a socket being torn down are of no interest; they only must not go unhandled.
    this.socket.on("error", () => {})
    this.socket.destroy()
    callback(error)
  }
}

/**
 * Tells a clean TLS end from a truncation, for a TLS socket that reads through `transport` (a
 * `SocketFeed` or any JS Duplex). Call it before the TLS socket is made, so that this listener
 * runs before node:tls hears of the transport's end; `attach` the TLS socket once it exists.
 *
 * When the transport ends, node:tls has already been given every byte before that end. If one of
 * them was the peer's close_notify, the TLS socket has ended its readable side by then; if not,
 * the peer closed the transport without close_notify, and the reader gets IoError
 * "TruncatedEof" instead of a quiet end of input.
 *
 * @internal
 */
export const watchEnd = (transport: Stream.Duplex): EndWatch => new EndWatch(transport)

/** What `watchEnd` returns: a class, so that a connection pays for no closures of its own. @internal */
export class EndWatch {
  private tls: Stream.Readable | undefined = undefined
  private truncated = false
  /** The end-of-input verdict, for `SocketPortsOptions.onEnd` (bound: it is passed as a function). */
  readonly onEnd: () => SslError.SslError | undefined

  constructor(transport: Stream.Duplex) {
    this.onEnd = this.verdict.bind(this)
    transport.once("end", this.transportEnded.bind(this))
  }

  attach(socket: Stream.Readable): void {
    this.tls = socket
  }

  private transportEnded(): void {
    // `ended` is set synchronously when the TLS layer pushes its end (close_notify); the public
    // `readableEnded` only turns true later, once 'end' is emitted.
    const tls = this.tls
    const state = (tls as { _readableState?: { ended?: boolean } } | undefined)?._readableState
    this.truncated = !(state?.ended === true || tls?.readableEnded === true)
  }

  private verdict(): SslError.SslError | undefined {
    return this.truncated ? new SslError.IoError({ operation: "read", reason: "TruncatedEof" }) : undefined
  }
}
