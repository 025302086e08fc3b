/**
 * A one-way byte buffer between a producer and a consumer, the common machinery under every
 * port: in-memory pipes and socket inputs alike.
 *
 * Waiting never moves bytes: a waiter is only woken, and then takes what is there in one
 * synchronous step. So an interrupted wait loses nothing.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { IoError, type SslError } from "../SslError.js"

type Waiter = () => void

/** @internal */
export class ByteChannel {
  private chunks: Array<Uint8Array> = []
  private head = 0
  buffered = 0
  private ended = false
  private failure: SslError | undefined = undefined
  private readerClosed = false
  private readWaiters = new Set<Waiter>()
  private writeWaiters = new Set<Waiter>()

  constructor(
    /** offer waits while this many bytes are unread */
    readonly capacity: number,
    /** called when the reader has taken bytes (adapters resume a paused source) */
    private readonly onTaken?: (buffered: number) => void
  ) {}

  get isEnded(): boolean {
    return this.ended
  }

  get isReaderClosed(): boolean {
    return this.readerClosed
  }

  // ---- producer side ----

  /** Adds bytes regardless of capacity (a socket that has already read them). */
  push(bytes: Uint8Array): void {
    if (this.readerClosed || this.ended || bytes.length === 0) return
    this.chunks.push(bytes)
    this.buffered += bytes.length
    wake(this.readWaiters)
  }

  /** Adds bytes, waiting for room: never more than `capacity` unread. */
  offer(bytes: Uint8Array): Effect.Effect<void, IoError> {
    let offset = 0
    const step: Effect.Effect<void, IoError> = Effect.suspend(() => {
      if (this.readerClosed) return Effect.fail(new IoError({ operation: "write", reason: "BrokenPipe" }))
      if (this.ended) return Effect.fail(new IoError({ operation: "write", reason: "Closed" }))
      const room = this.capacity - this.buffered
      if (room > 0) {
        const n = Math.min(room, bytes.length - offset)
        // a copy: the writer may reuse its buffer as soon as offer returns, long before the reader
        // takes the bytes (and the reader gets bytes no writer can change under it)
        this.push(bytes.slice(offset, offset + n))
        offset += n
        if (offset >= bytes.length) return Effect.void
      }
      return Effect.zipRight(this.wait(this.writeWaiters), step)
    })
    return bytes.length === 0 ? Effect.void : step
  }

  /** Marks the end of the data: the reader sees EOF once it has taken what is buffered. */
  end(): void {
    this.ended = true
    wake(this.readWaiters)
    wake(this.writeWaiters)
  }

  /** Ends the data with an error, delivered to the reader after the buffered bytes. */
  fail(error: SslError): void {
    if (this.ended) return
    this.failure = error
    this.end()
  }

  /** Waits until the reader has taken everything or closed. */
  readonly drained: Effect.Effect<void> = Effect.suspend(() =>
    this.buffered === 0 || this.readerClosed ? Effect.void : Effect.zipRight(this.wait(this.writeWaiters), this.drained)
  )

  // ---- consumer side ----

  /** Takes up to `max` bytes (the first buffered chunk when `max` is undefined); None at EOF. */
  take(max?: number): Effect.Effect<Option.Option<Uint8Array>, SslError> {
    return this.takeThen(max, Effect.succeed)
  }

  /**
   * Takes like `take` and hands the result to `f` in the same synchronous step. An interruption
   * can fall between any two steps of an effect, so a reader that gathers several chunks must
   * record each chunk where its interruption handler sees it before the next step: taking and
   * recording are one step here.
   */
  takeThen<A, E>(
    max: number | undefined,
    f: (chunk: Option.Option<Uint8Array>) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | SslError> {
    const step: Effect.Effect<A, E | SslError> = Effect.suspend(() => {
      if (this.readerClosed) return Effect.fail(new IoError({ operation: "read", reason: "Closed" }))
      if (this.buffered > 0) return f(Option.some(this.takeNow(max)))
      if (this.ended) return this.failure === undefined ? f(Option.none()) : Effect.fail(this.failure)
      return Effect.zipRight(this.wait(this.readWaiters), step)
    })
    return step
  }

  /** What take would return without waiting, or undefined when it would wait. */
  poll(max?: number): Effect.Effect<Option.Option<Uint8Array>, SslError> | undefined {
    if (this.readerClosed) return Effect.fail(new IoError({ operation: "read", reason: "Closed" }))
    if (this.buffered > 0) return Effect.succeed(Option.some(this.takeNow(max)))
    if (this.ended) return this.failure === undefined ? Effect.succeed(Option.none()) : Effect.fail(this.failure)
    return undefined
  }

  /** Puts bytes back in front, for a reader interrupted after taking them. */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.readerClosed) return
    if (this.head > 0) {
      this.chunks[--this.head] = bytes
    } else {
      this.chunks.unshift(bytes)
    }
    this.buffered += bytes.length
    wake(this.readWaiters)
  }

  /** The reader goes away: buffered bytes are dropped and writers fail with BrokenPipe. */
  closeReader(): void {
    this.readerClosed = true
    this.chunks = []
    this.head = 0
    this.buffered = 0
    wake(this.readWaiters)
    wake(this.writeWaiters)
    this.onTaken?.(0)
  }

  private takeNow(max?: number): Uint8Array {
    const first = this.chunks[this.head]!
    let out: Uint8Array
    if (max === undefined || first.length <= max) {
      out = first
      this.chunks[this.head++] = undefined as unknown as Uint8Array
      if (this.head > 1024 || this.head === this.chunks.length) {
        this.chunks = this.chunks.slice(this.head)
        this.head = 0
      }
    } else {
      out = first.subarray(0, max)
      this.chunks[this.head] = first.subarray(max)
    }
    this.buffered -= out.length
    wake(this.writeWaiters)
    this.onTaken?.(this.buffered)
    return out
  }

  private wait(waiters: Set<Waiter>): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      const waiter: Waiter = () => resume(Effect.void)
      waiters.add(waiter)
      return Effect.sync(() => {
        waiters.delete(waiter)
      })
    })
  }
}

const wake = (waiters: Set<Waiter>) => {
  if (waiters.size === 0) return
  const all = Array.from(waiters)
  waiters.clear()
  for (const waiter of all) waiter()
}
