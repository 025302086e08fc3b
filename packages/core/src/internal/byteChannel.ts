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

/** How a waiting fiber is woken: the `resume` of its `Effect.async`. */
type Resume = (effect: Effect.Effect<void>) => void

/**
 * A waiting reader: the `resume` of its wait and the step it resumes with (the take itself, which
 * checks the state again). Resuming with the step rather than with `void` followed by the step
 * saves the fiber a continuation per wake: one wake per TLS record for a reader keeping up.
 */
type ReaderResume = (step: Effect.Effect<any, any>) => void
interface Reader {
  readonly resume: ReaderResume
  readonly step: Effect.Effect<any, any>
}

/** @internal */
export class ByteChannel {
  private chunks: Array<Uint8Array> = []
  private head = 0
  buffered = 0
  private ended = false
  private failure: SslError | (() => SslError) | undefined = undefined
  private readerClosed = false
  // A port has one reader and one writer at a time, so one waiter per side is the usual case and
  // takes a slot; more (concurrent reads or writes, which the API allows) wait in an array.
  private reader: ReaderResume | undefined = undefined
  private readerStep: Effect.Effect<any, any> | undefined = undefined
  private readers: Array<Reader> | undefined = undefined
  private writer: Resume | undefined = undefined
  private writers: Array<Resume> | undefined = undefined
  // The writers' wait, made on first use (then reused for every wait of this channel).
  private writeWait: Effect.Effect<void> | undefined = undefined
  // `take()` without a limit, the read of every reading loop: made once, as it holds no state of
  // its own. A reader that keeps up with a socket runs it once per TLS record, and every object
  // made per record is young-generation garbage (BENCHMARKS.md, session 10).
  private takeAny: Effect.Effect<Option.Option<Uint8Array>, SslError> | undefined = undefined

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
    this.wakeReaders()
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
        // takes the bytes (and the reader gets bytes no writer can change under it). Made by the
        // Uint8Array constructor, not `slice`: a Node Buffer's slice shares its memory, and the
        // reader is promised a plain Uint8Array.
        this.push(new Uint8Array(bytes.subarray(offset, offset + n)))
        offset += n
        if (offset >= bytes.length) return Effect.void
      }
      return Effect.zipRight(this.waitForRoom(), step)
    })
    return bytes.length === 0 ? Effect.void : step
  }

  /** Marks the end of the data: the reader sees EOF once it has taken what is buffered. */
  end(): void {
    this.ended = true
    this.wakeReaders()
    this.wakeWriters()
  }

  /**
   * Ends the data with an error, delivered to the reader after the buffered bytes; given as a
   * function, the error is made only if a reader gets to it (most connections end unread).
   */
  fail(error: SslError | (() => SslError)): void {
    if (this.ended) return
    this.failure = error
    this.end()
  }

  private failed(): SslError | undefined {
    if (typeof this.failure === "function") this.failure = this.failure()
    return this.failure
  }

  /** Waits until the reader has taken everything or closed. */
  get drained(): Effect.Effect<void> {
    const loop: Effect.Effect<void> = Effect.suspend(() =>
      this.isDrained() ? Effect.void : Effect.zipRight(
        Effect.async<void>((resume) => {
          // rare (no port uses it on a hot path): a closure per wait is fine here
          if (this.isDrained()) return resume(Effect.void)
          return this.addWriter(resume)
        }),
        loop
      )
    )
    return loop
  }

  private isDrained(): boolean {
    return this.buffered === 0 || this.readerClosed
  }

  // ---- consumer side ----

  /** Takes up to `max` bytes (the first buffered chunk when `max` is undefined); None at EOF. */
  take(max?: number): Effect.Effect<Option.Option<Uint8Array>, SslError> {
    if (max === undefined) return this.takeAny ??= this.takeThen(undefined, Effect.succeed)
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
    // (made at the first wait, then the same for every wait of this step)
    let wait: Effect.Effect<A, E | SslError> | undefined
    const step: Effect.Effect<A, E | SslError> = Effect.suspend(() => {
      if (this.readerClosed) return Effect.fail(new IoError({ operation: "read", reason: "Closed" }))
      if (this.buffered > 0) return f(Option.some(this.takeNow(max)))
      if (this.ended) {
        const failure = this.failed()
        return failure === undefined ? f(Option.none()) : Effect.fail(failure)
      }
      return wait ??= this.waitThen(step)
    })
    return step
  }

  /** What take would return without waiting, or undefined when it would wait. */
  poll(max?: number): Effect.Effect<Option.Option<Uint8Array>, SslError> | undefined {
    if (this.readerClosed) return Effect.fail(new IoError({ operation: "read", reason: "Closed" }))
    if (this.buffered > 0) return Effect.succeed(Option.some(this.takeNow(max)))
    if (this.ended) {
      const failure = this.failed()
      return failure === undefined ? Effect.succeed(Option.none()) : Effect.fail(failure)
    }
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
    this.wakeReaders()
  }

  /** The reader goes away: buffered bytes are dropped and writers fail with BrokenPipe. */
  closeReader(): void {
    this.readerClosed = true
    this.chunks = []
    this.head = 0
    this.buffered = 0
    this.wakeReaders()
    this.wakeWriters()
    this.onTaken?.(0)
  }

  /**
   * Everything buffered, up to `max`: one chunk as it is, or several joined into one array. A
   * reader that falls behind a fast transport then takes in one step what came as many 16 KiB
   * records, rather than one step (and, past the first, no wake-up) per record.
   */
  private takeNow(max?: number): Uint8Array {
    const first = this.chunks[this.head]!
    const limit = max === undefined ? this.buffered : Math.min(max, this.buffered)
    let out: Uint8Array
    if (first.length >= limit) {
      out = first.length === limit ? this.shift() : first.subarray(0, limit)
      if (first.length > limit) this.chunks[this.head] = first.subarray(limit)
    } else {
      out = new Uint8Array(limit)
      let offset = 0
      while (offset < limit) {
        const chunk = this.chunks[this.head]!
        const n = Math.min(chunk.length, limit - offset)
        out.set(n === chunk.length ? chunk : chunk.subarray(0, n), offset)
        offset += n
        if (n === chunk.length) this.shift()
        else this.chunks[this.head] = chunk.subarray(n)
      }
    }
    this.buffered -= out.length
    this.wakeWriters()
    this.onTaken?.(this.buffered)
    return out
  }

  private shift(): Uint8Array {
    const chunk = this.chunks[this.head]!
    this.chunks[this.head++] = undefined as unknown as Uint8Array
    if (this.head > 1024 || this.head === this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
    return chunk
  }

  // ---- waiting ----
  //
  // A wait only resumes its fiber, which then checks the state again. Each wait effect checks
  // the state itself before it registers: a fiber may yield between deciding to wait and
  // registering, and a wake that came in between would otherwise be missed.

  /** Waits for data, the end or the reader's close, then runs `step` (the take that waited). */
  private waitThen<A, E>(step: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.async<A, E>((resume) => {
      if (this.buffered > 0 || this.ended || this.readerClosed) return resume(step)
      return this.addReader(resume, step)
    })
  }

  private waitForRoom(): Effect.Effect<void> {
    return this.writeWait ??= Effect.async<void>((resume) => {
      if (this.buffered < this.capacity || this.ended || this.readerClosed) return resume(Effect.void)
      return this.addWriter(resume)
    })
  }

  /**
   * Registers a waiting reader. The first takes the slot and gives Effect no canceller: a wait with
   * one costs an interruption handler (about 1 µs and a dozen objects per wait, paid per 16 KiB
   * record by a reader keeping up with a socket). A reader interrupted there leaves its `resume`
   * in the slot, where it does no harm: Effect ignores a resume that comes after the interruption,
   * and the next wake empties the slot. Readers that find the slot taken wait with a canceller
   * that unregisters them, so nothing piles up however often reads are interrupted. (Except in
   * one window of Effect's: a fiber that yields to the scheduler between the register and its
   * wait, and is interrupted there, never runs the canceller; its entry stays until the next wake,
   * which empties the array.) Effect skips the handler only for a register of one parameter that
   * returns nothing: a second parameter, the AbortSignal, brings it back, and an interrupt then
   * aborts it (a DOMException with its stack trace, about 15 µs).
   */
  private addReader(resume: ReaderResume, step: Effect.Effect<any, any>): Effect.Effect<void> | undefined {
    if (this.reader === undefined) {
      this.reader = resume
      this.readerStep = step
      return undefined
    }
    const readers = (this.readers ??= [])
    const reader: Reader = { resume, step }
    readers.push(reader)
    return Effect.sync(() => {
      if (this.readers === readers) this.readers = remove(readers, reader)
    })
  }

  private addWriter(resume: Resume): Effect.Effect<void> | undefined {
    if (this.writer === undefined) {
      this.writer = resume
      return undefined
    }
    const writers = (this.writers ??= [])
    writers.push(resume)
    return Effect.sync(() => {
      if (this.writers === writers) this.writers = remove(writers, resume)
    })
  }

  private wakeReaders(): void {
    const first = this.reader
    const more = this.readers
    if (first === undefined && more === undefined) return
    const step = this.readerStep
    this.reader = undefined
    this.readerStep = undefined
    this.readers = undefined
    first?.(step!)
    if (more !== undefined) { for (const reader of more) reader.resume(reader.step) }
  }

  private wakeWriters(): void {
    const first = this.writer
    const more = this.writers
    if (first === undefined && more === undefined) return
    this.writer = undefined
    this.writers = undefined
    first?.(Effect.void)
    if (more !== undefined) { for (const resume of more) resume(Effect.void) }
  }
}

/** The waiters without `waiter`; undefined when none is left. */
const remove = <W>(waiters: Array<W>, waiter: W): Array<W> | undefined => {
  const i = waiters.indexOf(waiter)
  if (i >= 0) waiters.splice(i, 1)
  return waiters.length === 0 ? undefined : waiters
}
