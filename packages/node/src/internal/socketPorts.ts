/**
 * Ports over a Node stream socket (plain net.Socket or tls.TLSSocket): every event the socket can
 * emit is listened to from the moment the socket exists, and turned into channel state, so no
 * 'error' event ever goes unhandled and no byte is dropped.
 *
 * @internal
 */
import type { Port as PortT } from "@effect-ssl/core"
import { Port, SslError } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import type * as Stream from "node:stream"
import * as Errors from "./errors.js"
import type { SocketFeed } from "./jsStreamTransport.js"

/** @internal */
export type NodeSocket = Stream.Duplex & {
  readonly destroyed: boolean
  readonly writable: boolean
  pause(): unknown
  resume(): unknown
}

// Bytes a connection buffers ahead of its reader before it stops reading the socket.
const highWaterMark = 1024 * 1024
// Bytes a writer may queue on the socket before it waits for them to go.
const writeAhead = 1024 * 1024
// Writes up to this size are copied when the socket would queue them; larger ones wait instead.
const copyLimit = 16 * 1024
// Small writes queued behind a write in flight are copied into one buffer of this size, which goes
// to the socket as one write once it is full or the writer yields (see `write`).
const stageSize = 64 * 1024
// Staging buffers whose writes have gone, for the next staged writes of any connection: a new
// 64 KiB ArrayBuffer per flush costs garbage collection. Bounded, as Node's own Buffer pool is.
const spareStages: Array<Buffer> = []
const maxSpareStages = 16
const spareStage = (buffer: Buffer) => {
  if (spareStages.length < maxSpareStages) spareStages.push(buffer)
}

/** @internal */
export interface SocketPortsOptions {
  /**
   * TLS ports: the side, and the peer as error messages name it (a handshake rejection that
   * arrives after the handshake completed locally is reported as the HandshakeError it is).
   */
  readonly side?: "client" | "server" | undefined
  readonly peer?: string | undefined
  /** What end-of-input means: a TLS socket tells clean close_notify from truncation. */
  readonly onEnd?: (() => SslError.SslError | undefined) | undefined
  /** `output.close` ends the socket (TLS: close_notify) rather than only refusing writes. */
  readonly shutdownOnClose: boolean
  /** Called once both ports are closed. */
  readonly onBothClosed?: (() => void) | undefined
  /**
   * Every write is copied, not only those queued behind another: a plain TCP socket hands the
   * kernel what it can at once and keeps the caller's memory for the rest (a TLS socket encrypts
   * the whole write before it returns).
   */
  readonly copyWrites?: boolean | undefined
}

type Resume = (effect: Effect.Effect<void, SslError.SslError>) => void

const ignore = (): void => {}

const resetError = () => new SslError.IoError({ operation: "read", reason: "Reset" })

/**
 * Who listens to a socket. Node calls a listener with `this` set to the emitter, so the listeners
 * of SocketPorts and SocketFeed are static functions that find their object here (as Node's own
 * streams do with `owner_symbol`): a connection pays for no listener closures. A socket has at
 * most one SocketPorts (its plain ports) and one SocketFeed listening at a time.
 */
export const owner = Symbol("@effect-ssl/node/socketPorts/owner")

/** @internal */
export interface Owners {
  ports: SocketPorts | undefined
  feed: SocketFeed | undefined
}

/** @internal */
export type Owned = NodeSocket & { [owner]: Owners }

/** @internal */
export const ownersOf = (
  socket: NodeSocket
): Owners => ((socket as Partial<Owned>)[owner] ??= { ports: undefined, feed: undefined })

/** @internal */
export class SocketPorts {
  readonly channel: PortT.Channel
  private paused = false
  private writeError: SslError.SslError | undefined = undefined
  // A writer waiting for 'drain': one in a slot, more (concurrent writes) in an array.
  private drainWaiter: Resume | undefined = undefined
  private drainWaiters: Array<Resume> | undefined = undefined
  // Small writes not yet handed to the socket: `staged` holds `stagedLength` bytes.
  private staged: Buffer | undefined = undefined
  private stagedLength = 0
  private stageFlushQueued = false
  // The output's waits for room, made on first use (see `waitForRoom`).
  private roomForAll: Effect.Effect<void, SslError.SslError> | undefined = undefined
  private roomAhead: Effect.Effect<void, SslError.SslError> | undefined = undefined
  /** bytes the socket delivered and bytes written to it, for SslMetrics */
  bytesRead = 0
  bytesWritten = 0
  private outputClosed = false
  // Between `detach` and `reattach` the socket carries someone else's bytes (TLS over STARTTLS,
  // node:http): a write through these ports would land in the middle of them.
  private outputDetached = false
  private inputClosed = false
  private ended = false
  private closed = false
  readonly input: PortT.Input
  readonly output: PortT.Output

  // The socket's listeners, the same functions for every connection (see `owner`).
  private static onData(this: Owned, chunk: Uint8Array): void {
    this[owner].ports?.data(chunk)
  }
  private static onEndEvent(this: Owned): void {
    this[owner].ports?.endEvent()
  }
  private static onError(this: Owned, error: unknown): void {
    this[owner].ports?.error(error)
  }
  private static onClose(this: Owned): void {
    this[owner].ports?.closeEvent()
  }
  private static onDrain(this: Owned): void {
    this[owner].ports?.wakeWriters()
  }

  /**
   * Made while a TLS handshake is under way (see connection.ts, Groundwork), the ports hear of the
   * socket's end and close from `start` on, once the handshake's own listeners are off: a
   * socket's listener array that once held three (node:tls's, the handshake's, ours) keeps their
   * room, as node:events removes with a splice and V8 does not shrink; 0.4 KiB per connection
   * for 'close' and 'end' together. Data, drain and errors they hear of from the start.
   */
  constructor(readonly socket: NodeSocket, private readonly options: SocketPortsOptions) {
    this.channel = Port.makeChannel(highWaterMark, this.taken.bind(this))
    ownersOf(socket).ports = this
    this.listenForData()
    socket.on("error", SocketPorts.onError)
    // The input's own close closes the channel's reader, which `taken` hears of.
    this.input = Port.makeInput(this.channel)
    // These ports are the output's steps themselves (write, flush, close): no object between.
    this.output = Port.makeOutput(this)
  }

  /** Listens for the socket's end and close; see the constructor. */
  start(): this {
    const socket = this.socket
    this.listenForEnd()
    // A socket can end or close before anyone listens (a client that half-closes before its
    // accept): its 'end' or 'close' has been and gone.
    if (socket.destroyed) this.closeEvent()
    else if (socket.readableEnded) this.endEvent()
    return this
  }

  private listenForData(): void {
    this.socket.on("data", SocketPorts.onData)
    this.socket.on("drain", SocketPorts.onDrain)
  }

  private listenForEnd(): void {
    this.socket.on("end", SocketPorts.onEndEvent)
    this.socket.on("close", SocketPorts.onClose)
  }

  private taken(buffered: number): void {
    if (this.channel.isReaderClosed) this.closeInput()
    if (this.paused && buffered < highWaterMark / 2) {
      this.paused = false
      this.socket.resume()
    }
  }

  private data(chunk: Uint8Array): void {
    // A plain Uint8Array over the same memory: a Buffer's `slice` shares memory where a
    // Uint8Array's copies, and readers are promised Uint8Arrays.
    this.bytesRead += chunk.byteLength
    this.channel.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    if (!this.paused && this.channel.buffered >= highWaterMark) {
      this.paused = true
      this.socket.pause()
    }
  }

  /** A socket error as the error the user gets. */
  private mapError(error: unknown, operation: "read" | "write"): SslError.SslError {
    const { peer, side } = this.options
    return Errors.ioError(error, operation, side === undefined ? undefined : { side, peer })
  }

  private endEvent(): void {
    this.ended = true
    const failure = this.options.onEnd?.()
    if (failure !== undefined) this.channel.fail(failure)
    else this.channel.end()
  }

  private error(error: unknown): void {
    const readError = this.mapError(error, "read")
    if (this.writeError === undefined) this.writeError = this.mapError(error, "write")
    this.channel.fail(readError)
    // node:tls reports a TLS error after the handshake (a bad record, a refused renegotiation)
    // without closing the connection; none of them leaves it usable.
    if (!this.socket.destroyed) this.socket.destroy()
    this.wakeWriters()
  }

  // Built only when a write needs it: most connections close without one.
  private failedWrite(): SslError.SslError | undefined {
    if (this.writeError === undefined && this.closed) {
      this.writeError = new SslError.IoError({ operation: "write", reason: "Closed" })
    }
    if (this.writeError !== undefined) return this.writeError
    // The scope's end destroys the socket before its 'close' comes, and a writer woken by that
    // must not take the socket for open. (Not kept: an 'error' may still come and say more.)
    if (this.socket.destroyed) return new SslError.IoError({ operation: "write", reason: "Closed" })
    return undefined
  }

  private closeEvent(): void {
    this.closed = true
    if (!this.ended) {
      // A close without 'end' means the transport went away under us. (Most connections are
      // closed by their own scope without another read: the error is made only if one comes.)
      this.channel.fail(resetError)
    }
    this.wakeWriters()
  }

  /**
   * Resumes the writers waiting for 'drain' that may go on: with the error once the socket has
   * failed or closed, or when the socket has room again. The others keep waiting.
   */
  private wakeWriters(): void {
    if (this.drainWaiter === undefined && this.drainWaiters === undefined) return
    const failed = this.failedWrite()
    if (failed === undefined && this.socket.writableNeedDrain) return
    this.resumeWriters(failed === undefined ? Effect.void : Effect.fail(failed))
  }

  private resumeWriters(wake: Effect.Effect<void, SslError.SslError>): void {
    const first = this.drainWaiter
    const more = this.drainWaiters
    this.drainWaiter = undefined
    this.drainWaiters = undefined
    first?.(wake)
    if (more !== undefined) { for (const resume of more) resume(wake) }
  }

  /** Stops listening to the socket and hands back what was read but not yet taken. */
  detach(): Array<Uint8Array> {
    this.flushStaged()
    this.socket.off("data", SocketPorts.onData)
    this.socket.off("end", SocketPorts.onEndEvent)
    this.socket.off("close", SocketPorts.onClose)
    this.socket.off("drain", SocketPorts.onDrain)
    this.socket.pause()
    // No 'drain' or 'close' reaches these ports any more. A writer waiting for room with its bytes
    // queued is done (they go before anything the next owner writes); one that waits to hand its
    // bytes over finds the output detached and fails.
    this.outputDetached = true
    this.resumeWriters(Effect.void)
    const leftover: Array<Uint8Array> = []
    // Only what is buffered now: `take` on an empty channel waits, which runSync cannot do.
    while (this.channel.buffered > 0) {
      const next = Effect.runSync(Effect.option(this.channel.take()))
      if (next._tag !== "Some" || next.value._tag !== "Some") break
      leftover.push(next.value.value)
    }
    // Keep an error listener until the next owner attaches its own.
    return leftover
  }

  /** Removes the provisional error listener kept by detach. */
  releaseErrorListener(): void {
    this.socket.off("error", SocketPorts.onError)
  }

  /** Listens to the socket again after TLS has let go of it (STARTTLS without closeOriginal). */
  reattach(leftover: ReadonlyArray<Uint8Array>): void {
    this.outputDetached = false
    this.socket.on("error", SocketPorts.onError)
    // (plain views: what a feed held back comes as Node Buffers)
    for (let i = leftover.length - 1; i >= 0; i--) {
      const chunk = leftover[i]!
      this.channel.unread(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    }
    if (this.socket.destroyed) return this.closeEvent()
    this.listenForData()
    this.listenForEnd()
    if (this.socket.readableEnded) this.endEvent()
    else this.socket.resume()
  }

  /**
   * The output's write. It hands the bytes to the socket at once and waits only while more than
   * `writeAhead` bytes are queued: waiting for every 'drain' would cost an event-loop turn per
   * write. The socket keeps by reference what it queues behind a write in flight, and the caller
   * may reuse its array as soon as the write returns. So small writes queued so are copied, into
   * one staging buffer that goes to the socket as a single write when it is full or at the next
   * microtask (once the writer yields): a socket write costs far more than copying 1 KiB, and
   * node:tls would otherwise join the pieces itself (writev) with a copy of its own. A large
   * write waits until the queue has gone instead, and is then handed over as it is (OpenSSL takes
   * it at once), as copying 64 KiB costs more than the wait. A plain TCP socket (`copyWrites`)
   * gets a copy of every write, with no wait.
   */
  write(bytes: Uint8Array): Effect.Effect<void, SslError.SslError> {
    if (this.outputClosed) return Effect.fail(new SslError.IoError({ operation: "write", reason: "Closed" }))
    const step: Effect.Effect<void, SslError.SslError> = Effect.suspend(() => {
      const failed = this.writeFailure()
      if (failed !== undefined) return failed
      const socket = this.socket
      const length = bytes.length
      if (length === 0) return Effect.void
      if (length <= copyLimit && (this.stagedLength > 0 || socket.writableLength > 0)) {
        this.stage(bytes)
      } else {
        if (this.stagedLength > 0) this.flushStaged()
        const copyWrites = this.options.copyWrites === true
        const queued = socket.writableLength
        if (!copyWrites && queued > 0 && length > copyLimit && socket.writableNeedDrain) {
          return Effect.zipRight(this.waitForRoom("empty"), step)
        }
        socket.write(copyWrites || queued > 0 ? Buffer.from(bytes) : bytes)
      }
      this.bytesWritten += length
      return socket.writableLength + this.stagedLength > writeAhead ? this.waitForRoom("ahead") : Effect.void
    })
    return step
  }

  private stage(bytes: Uint8Array): void {
    if (this.stagedLength + bytes.length > stageSize) this.flushStaged()
    const staged = this.staged ??= spareStages.pop() ?? Buffer.allocUnsafe(stageSize)
    staged.set(bytes, this.stagedLength)
    this.stagedLength += bytes.length
    if (this.stagedLength === stageSize) this.flushStaged()
    else if (!this.stageFlushQueued) {
      this.stageFlushQueued = true
      queueMicrotask(() => {
        this.stageFlushQueued = false
        this.flushStaged()
      })
    }
  }

  /** Hands the staged writes to the socket (before anything else is written, ended or flushed). */
  private flushStaged(): void {
    if (this.stagedLength === 0) return
    const staged = this.staged!
    const length = this.stagedLength
    // The socket keeps what it queues until the write is done: the next staged writes go to
    // another buffer, and this one is spare once its write is.
    this.staged = undefined
    this.stagedLength = 0
    if (this.socket.destroyed || this.socket.writableEnded) return spareStage(staged)
    // A stage less than half full goes as a copy of its own size: the socket holds each write
    // until it is done, and a writer that yields after every small write would otherwise hold
    // 64 KiB per write queued, which the write-ahead limit (counted in bytes) does not see.
    if (length < stageSize / 2) {
      this.socket.write(Buffer.from(staged.subarray(0, length)))
      return spareStage(staged)
    }
    this.socket.write(staged.subarray(0, length), () => spareStage(staged))
  }

  /**
   * Waits until the socket's queue is empty ("empty") or at most `writeAhead` bytes ("ahead"), or
   * the socket has no more need to drain.
   */
  private waitForRoom(until: "empty" | "ahead"): Effect.Effect<void, SslError.SslError> {
    // The two waits are made once per connection: a writer faster than the socket waits once per
    // write, and every object made per wait is garbage.
    if (until === "empty") return this.roomForAll ??= this.makeWaitForRoom(0)
    return this.roomAhead ??= this.makeWaitForRoom(writeAhead)
  }

  private makeWaitForRoom(limit: number): Effect.Effect<void, SslError.SslError> {
    return Effect.async<void, SslError.SslError>((resume) => {
      const failed = this.writeFailure()
      if (failed !== undefined) return resume(failed)
      this.flushStaged()
      if (this.socket.writableLength <= limit || !this.socket.writableNeedDrain) return resume(Effect.void)
      // The first waiter takes the slot without a canceller, as a channel's reader does (see
      // ByteChannel.addReader): Effect then adds no interruption handler to the wait, whose objects
      // would live as long as the wait, until 'drain', and so outlive scavenges and grow V8's
      // young generation (BENCHMARKS.md, session 10). A writer interrupted there leaves its
      // `resume` in the slot, where the next wake (a 'drain', an error, the close, a detach) calls
      // it and Effect ignores it; until then the slot keeps that writer's finished fiber (one per
      // output at most). Writers that find the slot taken wait with a canceller.
      if (this.drainWaiter === undefined) {
        this.drainWaiter = resume
        return
      }
      const waiters = (this.drainWaiters ??= [])
      waiters.push(resume)
      return Effect.sync(() => {
        if (this.drainWaiters !== waiters) return
        const i = waiters.indexOf(resume)
        if (i >= 0) waiters.splice(i, 1)
        if (waiters.length === 0) this.drainWaiters = undefined
      })
    })
  }

  /** Why a write cannot go on now (closed output, failed or closed socket), if it cannot. */
  private writeFailure(): Effect.Effect<never, SslError.SslError> | undefined {
    if (this.outputClosed || this.outputDetached) {
      return Effect.fail(new SslError.IoError({ operation: "write", reason: "Closed" }))
    }
    const failed = this.failedWrite()
    return failed === undefined ? undefined : Effect.fail(failed)
  }

  /** The output's flush. */
  get flush(): Effect.Effect<void, SslError.SslError> {
    return Effect.suspend(() => {
      // An output that has finished (its close saw 'finish') handed everything over, whatever
      // became of the socket since (a peer that had ended first: Node destroys it at once).
      if (this.socket.writableFinished) return Effect.void
      const failed = this.failedWrite()
      if (failed !== undefined) return Effect.fail(failed)
      this.flushStaged()
      if (this.outputClosed || this.socket.writableLength === 0) return Effect.void
      return Effect.async<void, SslError.SslError>((resume) => {
        this.socket.write(new Uint8Array(0), (error) => {
          resume(error ? Effect.fail(this.mapError(error, "write")) : Effect.void)
        })
      })
    })
  }

  /** The output's close. */
  get close(): Effect.Effect<void, SslError.SslError> {
    return Effect.suspend(() => {
      if (this.outputClosed) return Effect.void
      this.outputClosed = true
      this.flushStaged()
      const finish = Effect.sync(() => this.maybeBothClosed())
      if (!this.options.shutdownOnClose || this.closed || this.socket.destroyed || !this.socket.writable) {
        return finish
      }
      const ending = Effect.async<void, SslError.SslError>((resume) => {
        const done = () => {
          this.socket.off("finish", done)
          this.socket.off("close", done)
          resume(this.writeError !== undefined && !this.closed ? Effect.fail(this.writeError) : Effect.void)
        }
        this.socket.on("finish", done)
        this.socket.on("close", done)
        this.socket.end()
        return Effect.sync(() => {
          this.socket.off("finish", done)
          this.socket.off("close", done)
        })
      })
      return Effect.ensuring(ending, finish)
    })
  }

  private closeInput(): void {
    if (this.inputClosed) return
    this.inputClosed = true
    if (!this.channel.isReaderClosed) this.channel.closeReader()
    this.maybeBothClosed()
  }

  private maybeBothClosed(): void {
    if (this.inputClosed && this.outputClosed) this.options.onBothClosed?.()
  }

  /**
   * The socket under these detached ports was closed by the TLS connection that took it
   * (closeOriginal): they are closed too, so reads and writes fail rather than hang or vanish.
   */
  closeWithTransport(): void {
    this.outputClosed = true
    this.closeInput()
    this.socket.destroy()
    this.wakeWriters()
  }

  /** Closes the output without a close_notify (Racket's ssl-abandon-port). */
  abandon(): void {
    this.flushStaged()
    this.outputClosed = true
    this.maybeBothClosed()
  }

  /**
   * The end of the connection's scope, begun now (a call made from the release's own step): what
   * was written reaches the transport, then a close_notify if the transport can still take one,
   * then the socket is destroyed. Bounded, so a peer that stops reading cannot hold a scope open.
   * With `wait` it returns the wait for all of it (a wrapped transport's next user must find TLS
   * gone); without, nothing to wait for, and once our end (close_notify) has gone, the socket
   * goes by itself when the peer has closed its side too (within `graceMillis` at most), reading
   * and dropping what still comes meanwhile. A
   * socket closed with bytes it has not read (a TLS 1.3 ticket that came after the handshake, say)
   * is reset by the kernel, and a reset takes with it what the peer has not read yet: the last
   * writes.
   */
  shutdown(graceMillis: number, wait: boolean): Effect.Effect<void> | undefined {
    const socket = this.socket
    this.flushStaged()
    if (socket.destroyed || this.closed) return void this.destroy()
    const closeNotify = this.options.shutdownOnClose && !this.outputClosed && socket.writable
    // An output closed without close_notify (abandon, shutdownOnClose false) still delivers
    // what was written before it: flush, then destroy.
    const flushOnly = !closeNotify && socket.writable && socket.writableLength > 0
    // An end already under way (output.close interrupted) is given the same grace to finish.
    const ending = !closeNotify && socket.writableEnded && !socket.writableFinished
    // Our end went out before (output.close), but the peer has not closed: its close is waited
    // for as well. (An output abandoned, so without an end of ours, is not: the peer may be
    // waiting for us to close.)
    const linger = !wait && socket.writableEnded && !socket.readableEnded
    if (!closeNotify && !flushOnly && !ending && !linger) return void this.destroy()
    const start = (done: () => void) => {
      let finished = false
      const finish = () => {
        if (finished) return
        finished = true
        clearTimeout(timer)
        socket.off("finish", sent)
        socket.off("close", finish)
        socket.off("end", finish)
        this.destroy()
        done()
      }
      // Our side is done: without `wait`, the peer's end (or the timer) ends it.
      const sent = () => {
        if (wait || socket.readableEnded) return finish()
        socket.on("end", finish)
        // (Closing the reader drops what is buffered and resumes a paused socket: see `taken`.)
        this.channel.closeReader()
      }
      const timer = setTimeout(finish, graceMillis)
      socket.on("close", finish)
      if (flushOnly) {
        socket.write(new Uint8Array(0), finish)
      } else if (closeNotify || ending) {
        socket.on("finish", sent)
        if (closeNotify) socket.end()
      } else {
        sent()
      }
      return timer
    }
    if (!wait) return void start(ignore)
    return Effect.async<void>((resume) => {
      const timer = start(() => resume(Effect.void))
      return Effect.sync(() => {
        clearTimeout(timer)
        this.destroy()
      })
    })
  }

  private destroy(): void {
    this.socket.destroy()
    this.wakeWriters()
  }
}
