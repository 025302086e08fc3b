/**
 * Byte ports, the counterpart of Racket's input and output ports: what a connection reads and
 * writes, and what `Ssl.wrap` runs TLS over.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import { ByteChannel } from "./internal/byteChannel.js"
import { InvalidArgumentError, IoError, type SslError } from "./SslError.js"

/**
 * The reading side of a port.
 *
 * @since 0.1.0
 * @category models
 */
export interface Input {
  /** The bytes available now (waiting for at least one), at most `maxBytes`; None at end of input. */
  read(maxBytes?: number): Effect.Effect<Option.Option<Uint8Array>, SslError>
  /** Exactly `n` bytes; fails with IoError "UnexpectedEof" if the input ends first. */
  readExactly(n: number): Effect.Effect<Uint8Array, SslError>
  /** One UTF-8 line without its "\n" or "\r\n"; None at end of input. */
  readonly readLine: Effect.Effect<Option.Option<string>, SslError>
  /** Everything up to the end of input. */
  readonly readAll: Effect.Effect<Uint8Array, SslError>
  /** The input as a stream of chunks, ending at end of input. */
  readonly stream: Stream.Stream<Uint8Array, SslError>
  /** Stops reading; unread bytes are dropped. */
  readonly close: Effect.Effect<void>
}

/**
 * The writing side of a port.
 *
 * @since 0.1.0
 * @category models
 */
export interface Output {
  /** Writes bytes (strings as UTF-8), waiting while the transport is full. */
  write(data: Uint8Array | string): Effect.Effect<void, SslError>
  /** Waits until everything written has been handed to the transport. */
  readonly flush: Effect.Effect<void, SslError>
  /** Ends the output (for TLS ports: sends close_notify when `shutdownOnClose`). */
  readonly close: Effect.Effect<void, SslError>
  /** A sink that writes every element. */
  readonly sink: Sink.Sink<void, Uint8Array | string, never, SslError>
}

/**
 * An input and an output that belong together: a connection, or one end of a pipe.
 *
 * @since 0.1.0
 * @category models
 */
export interface Duplex {
  readonly input: Input
  readonly output: Output
}

/**
 * A byte buffer between a producer and a consumer, for platform adapters that build ports over
 * their own transports (see `makeInput`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Channel {
  readonly buffered: number
  readonly isEnded: boolean
  readonly isReaderClosed: boolean
  /** Adds bytes the transport has already read, regardless of capacity. */
  push(bytes: Uint8Array): void
  /** Adds bytes, waiting while `capacity` bytes are unread. */
  offer(bytes: Uint8Array): Effect.Effect<void, IoError>
  end(): void
  fail(error: SslError): void
  readonly drained: Effect.Effect<void>
  take(max?: number): Effect.Effect<Option.Option<Uint8Array>, SslError>
  unread(bytes: Uint8Array): void
  closeReader(): void
}

/**
 * Makes a channel; `onTaken` is told how many bytes remain buffered each time the reader takes
 * some (to resume a paused transport).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeChannel = (capacity: number, onTaken?: (buffered: number) => void): Channel =>
  new ByteChannel(capacity, onTaken)

const encoder = new TextEncoder()

const toBytes = (data: Uint8Array | string): Uint8Array => (typeof data === "string" ? encoder.encode(data) : data)

const concat = (parts: ReadonlyArray<Uint8Array>, total: number): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  const out = new Uint8Array(total)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

const checkCount = (argument: string, n: number | undefined): Effect.Effect<void, InvalidArgumentError> =>
  n === undefined || (Number.isSafeInteger(n) && n >= 0)
    ? Effect.void
    : Effect.fail(new InvalidArgumentError({ argument, value: n, reason: "expected a non-negative integer" }))

/** The bytes a read has taken so far. */
class Gathered {
  private parts: Array<Uint8Array> = []
  total = 0
  add(chunk: Uint8Array): void {
    this.parts.push(chunk)
    this.total += chunk.length
  }
  bytes(): Uint8Array {
    return concat(this.parts, this.total)
  }
  giveBack(channel: Channel): void {
    if (this.total > 0) channel.unread(this.bytes())
    this.parts = []
    this.total = 0
  }
}

/**
 * Builds an Input over a channel. Reads that gather several chunks (readExactly, readLine,
 * readAll) put what they gathered back when interrupted, so no byte is lost.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeInput = (channel: Channel, close?: Effect.Effect<void>): Input => {
  // Takes a chunk and continues with `f` in one step where the channel allows it (see
  // ByteChannel.takeThen), so the gathering reads below never hold a taken chunk that their
  // interruption handler cannot see.
  const takeThen: <A, E>(
    max: number | undefined,
    f: (chunk: Option.Option<Uint8Array>) => Effect.Effect<A, E>
  ) => Effect.Effect<A, E | SslError> = channel instanceof ByteChannel
    ? (max, f) => channel.takeThen(max, f)
    : (max, f) => Effect.flatMap(channel.take(max), f)

  const read = (maxBytes?: number) =>
    maxBytes === 0 ? Effect.succeed(Option.some(new Uint8Array(0))) : Effect.zipRight(
      checkCount("maxBytes", maxBytes),
      channel.take(maxBytes)
    )

  // Each gathering read keeps what it has taken in a Gathered until it returns, and puts it back
  // in front of the channel when interrupted (or, for readExactly, when the input ends first).
  const gathering = <A>(body: (gathered: Gathered) => Effect.Effect<A, SslError>): Effect.Effect<A, SslError> =>
    Effect.suspend(() => {
      const gathered = new Gathered()
      return Effect.onInterrupt(body(gathered), () => Effect.sync(() => gathered.giveBack(channel)))
    })

  const readExactly = (n: number): Effect.Effect<Uint8Array, SslError> =>
    Effect.zipRight(
      checkCount("n", n),
      gathering((gathered) => {
        const loop: Effect.Effect<Uint8Array, SslError> = Effect.suspend(() =>
          gathered.total >= n
            ? Effect.succeed(gathered.bytes())
            : takeThen(
              n - gathered.total,
              Option.match({
                onNone: () => {
                  gathered.giveBack(channel)
                  return Effect.fail(new IoError({ operation: "read", reason: "UnexpectedEof" }))
                },
                onSome: (chunk) => {
                  gathered.add(chunk)
                  return loop
                }
              })
            )
        )
        return loop
      })
    )

  const decoder = new TextDecoder()
  const readLine: Effect.Effect<Option.Option<string>, SslError> = gathering((gathered) => {
    // The line is gathered with its "\n" (if any), so an interrupted readLine gives it all back.
    const decode = (newline: boolean) => {
      const bytes = gathered.bytes()
      let end = newline ? bytes.length - 1 : bytes.length
      if (newline && end > 0 && bytes[end - 1] === 13) end--
      return Option.some(decoder.decode(bytes.subarray(0, end)))
    }
    const loop: Effect.Effect<Option.Option<string>, SslError> = takeThen(
      undefined,
      Option.match({
        onNone: () => Effect.succeed(gathered.total === 0 ? Option.none() : decode(false)),
        onSome: (chunk) => {
          const newline = chunk.indexOf(10)
          if (newline < 0) {
            gathered.add(chunk)
            return loop
          }
          if (newline + 1 < chunk.length) channel.unread(chunk.subarray(newline + 1))
          gathered.add(chunk.subarray(0, newline + 1))
          return Effect.succeed(decode(true))
        }
      })
    )
    return loop
  })

  const readAll: Effect.Effect<Uint8Array, SslError> = gathering((gathered) => {
    const loop: Effect.Effect<Uint8Array, SslError> = takeThen(
      undefined,
      Option.match({
        onNone: () => Effect.succeed(gathered.bytes()),
        onSome: (chunk) => {
          gathered.add(chunk)
          return loop
        }
      })
    )
    return loop
  })

  // Built on first use: most connections never ask for it, and every connection has an input.
  let stream: Stream.Stream<Uint8Array, SslError> | undefined
  const makeStream = (): Stream.Stream<Uint8Array, SslError> =>
    Stream.repeatEffectOption(
      Effect.flatMap(
        Effect.mapError(channel.take(), Option.some),
        Option.match({ onNone: () => Effect.fail(Option.none()), onSome: Effect.succeed })
      )
    )

  return {
    read,
    readExactly,
    readLine,
    readAll,
    get stream() {
      return stream ??= makeStream()
    },
    close: close ?? Effect.sync(() => channel.closeReader())
  }
}

/**
 * Builds an Output from a write function and its flush and close steps; `sink` and string
 * encoding come for free.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeOutput = (options: {
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, SslError>
  readonly flush: Effect.Effect<void, SslError>
  readonly close: Effect.Effect<void, SslError>
}): Output => {
  const write = (data: Uint8Array | string) => options.write(toBytes(data))
  let sink: Sink.Sink<void, Uint8Array | string, never, SslError> | undefined
  return {
    write,
    flush: options.flush,
    close: options.close,
    get sink() {
      return sink ??= Sink.forEach(write)
    }
  }
}

/**
 * Makes a connected in-memory pair of duplexes: what one end writes, the other reads, like two
 * Racket pipes. A writer waits while `capacity` bytes (default 64 KiB) are unread; closing an
 * output gives the other end EOF; closing an input makes the other end's writes fail.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Port } from "@effect-ssl/core"
 *
 * const program = Effect.gen(function*() {
 *   const [a, b] = yield* Port.pipe({ capacity: 10 })
 *   yield* Effect.fork(a.output.write("hello\n"))
 *   return yield* b.input.readLine // Some("hello")
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const pipe = (options?: {
  readonly capacity?: number | undefined
}): Effect.Effect<readonly [Duplex, Duplex], InvalidArgumentError> => {
  const capacity = options?.capacity ?? 65536
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    return Effect.fail(
      new InvalidArgumentError({ argument: "capacity", value: capacity, reason: "expected a positive integer" })
    )
  }
  return Effect.sync(() => {
    const aToB = new ByteChannel(capacity)
    const bToA = new ByteChannel(capacity)
    const end = (channel: ByteChannel): Duplex["output"] =>
      makeOutput({
        write: (bytes) => channel.offer(bytes),
        flush: Effect.void,
        close: Effect.sync(() => channel.end())
      })
    return [
      { input: makeInput(bToA), output: end(aToB) },
      { input: makeInput(aToB), output: end(bToA) }
    ] as const
  })
}
