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
  /** Ends with an error after the buffered bytes; a function makes it only when a reader gets there. */
  fail(error: SslError | (() => SslError)): void
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

const invalidCount = (argument: string, n: number): Effect.Effect<never, InvalidArgumentError> =>
  Effect.fail(new InvalidArgumentError({ argument, value: n, reason: "expected a non-negative integer" }))

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

const emptyRead = Effect.succeed(Option.some(new Uint8Array(0)))

// Decodes whole lines (not a stream of them), so one decoder serves every port.
const lineDecoder = new TextDecoder()

// Takes a chunk and continues with `f` in one step where the channel allows it (see
// ByteChannel.takeThen), so the gathering reads below never hold a taken chunk that their
// interruption handler cannot see.
const takeThen = <A, E>(
  channel: Channel,
  max: number | undefined,
  f: (chunk: Option.Option<Uint8Array>) => Effect.Effect<A, E>
): Effect.Effect<A, E | SslError> =>
  channel instanceof ByteChannel ? channel.takeThen(max, f) : Effect.flatMap(channel.take(max), f)

// Each gathering read keeps what it has taken in a Gathered until it returns, and puts it back
// in front of the channel when interrupted (or, for readExactly, when the input ends first).
const gathering = <A>(
  channel: Channel,
  body: (channel: Channel, gathered: Gathered) => Effect.Effect<A, SslError>
): Effect.Effect<A, SslError> =>
  Effect.suspend(() => {
    const gathered = new Gathered()
    return Effect.onInterrupt(body(channel, gathered), () => Effect.sync(() => gathered.giveBack(channel)))
  })

const unexpectedEof = (): Effect.Effect<never, SslError> =>
  Effect.fail(new IoError({ operation: "read", reason: "UnexpectedEof" }))

const gatherExactly = (channel: Channel, n: number): Effect.Effect<Uint8Array, SslError> =>
  gathering(channel, (channel, gathered) => {
    const loop: Effect.Effect<Uint8Array, SslError> = Effect.suspend(() =>
      gathered.total >= n
        ? Effect.succeed(gathered.bytes())
        : takeThen(
          channel,
          n - gathered.total,
          Option.match({
            onNone: () => {
              gathered.giveBack(channel)
              return unexpectedEof()
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

// Most reads of a few bytes are answered by one chunk: that takes one step, with no Gathered and
// no interruption handler (each a handful of Effect steps, run cold beside the sockets). A chunk
// that is only part of it goes back in the step that took it, and the read gathers it all again
// under `gathering`'s handler (taking that part again does not wait).
const readExactlyFrom = (channel: Channel, n: number): Effect.Effect<Uint8Array, SslError> =>
  n === 0 ? gatherExactly(channel, n) : takeThen(channel, n, (chunk) => {
    if (Option.isNone(chunk)) return unexpectedEof()
    if (chunk.value.length === n) return Effect.succeed(chunk.value)
    channel.unread(chunk.value)
    return gatherExactly(channel, n)
  })

const readLineFrom = (channel: Channel, gathered: Gathered): Effect.Effect<Option.Option<string>, SslError> => {
  // The line is gathered with its "\n" (if any), so an interrupted readLine gives it all back.
  const decode = (newline: boolean) => {
    const bytes = gathered.bytes()
    let end = newline ? bytes.length - 1 : bytes.length
    if (newline && end > 0 && bytes[end - 1] === 13) end--
    return Option.some(lineDecoder.decode(bytes.subarray(0, end)))
  }
  const loop: Effect.Effect<Option.Option<string>, SslError> = takeThen(
    channel,
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
}

const readAllFrom = (channel: Channel, gathered: Gathered): Effect.Effect<Uint8Array, SslError> => {
  const loop: Effect.Effect<Uint8Array, SslError> = takeThen(
    channel,
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
}

const chunksFrom = (channel: Channel): Stream.Stream<Uint8Array, SslError> =>
  Stream.repeatEffectOption(
    Effect.flatMap(
      Effect.mapError(channel.take(), Option.some),
      Option.match({ onNone: () => Effect.fail(Option.none()), onSome: Effect.succeed })
    )
  )

// `read` and `readExactly` of every input: shared functions bound to each input (a bound function
// is smaller than a closure and its context), so that `const { read } = input` works too.
function read(this: { readonly channel: Channel }, maxBytes?: number) {
  if (maxBytes === undefined) return this.channel.take()
  if (maxBytes === 0) return emptyRead
  return Number.isSafeInteger(maxBytes) && maxBytes > 0
    ? this.channel.take(maxBytes)
    : invalidCount("maxBytes", maxBytes)
}

function readExactly(this: { readonly channel: Channel }, n: number) {
  return Number.isSafeInteger(n) && n >= 0 ? readExactlyFrom(this.channel, n) : invalidCount("n", n)
}

/**
 * Own enumerable accessors, one shared getter each: a port's members are own properties (an input
 * or output copied with spread, or destructured, works like the original), yet its effects and
 * streams cost no memory until read. Most connections are idle, every one has an input and an
 * output, and V8 gives every object made so the same hidden class.
 */
const defineLazy = (target: object, getters: ReadonlyArray<readonly [string, PropertyDescriptor]>): void => {
  for (const [name, descriptor] of getters) Object.defineProperty(target, name, descriptor)
}

const lazy = <T, A>(get: (this: T) => A): PropertyDescriptor => ({ get, enumerable: true, configurable: true })

const inputGetters: ReadonlyArray<readonly [string, PropertyDescriptor]> = [
  [
    "readLine",
    lazy(function(this: ChannelInput) {
      return gathering(this.channel, readLineFrom)
    })
  ],
  [
    "readAll",
    lazy(function(this: ChannelInput) {
      return gathering(this.channel, readAllFrom)
    })
  ],
  [
    "stream",
    lazy(function(this: ChannelInput) {
      return chunksFrom(this.channel)
    })
  ]
]

// An input's close when it is given none: it closes its channel's reader (made when read, too).
const defaultClose = lazy(function(this: ChannelInput) {
  const channel = this.channel
  return Effect.sync(() => channel.closeReader())
})

/**
 * An Input over a channel. Every member is an own property, as on a plain object, but `read` and
 * `readExactly` are shared functions bound to it and the rest are made when read (see
 * `defineLazy`).
 */
class ChannelInput implements Input {
  readonly read: Input["read"] = read.bind(this)
  readonly readExactly: Input["readExactly"] = readExactly.bind(this)
  declare readonly readLine: Effect.Effect<Option.Option<string>, SslError>
  declare readonly readAll: Effect.Effect<Uint8Array, SslError>
  declare readonly stream: Stream.Stream<Uint8Array, SslError>

  declare readonly close: Effect.Effect<void>

  constructor(readonly channel: Channel, close: Effect.Effect<void> | undefined) {
    defineLazy(this, inputGetters)
    if (close === undefined) Object.defineProperty(this, "close", defaultClose)
    else (this as { close: Effect.Effect<void> }).close = close
  }
}

/**
 * Builds an Input over a channel. Reads that gather several chunks (readExactly, readLine,
 * readAll) put what they gathered back when interrupted, so no byte is lost.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeInput = (channel: Channel, close?: Effect.Effect<void>): Input => new ChannelInput(channel, close)

/** What `makeOutput` builds an Output from. */
interface OutputSteps {
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, SslError>
  readonly flush: Effect.Effect<void, SslError>
  readonly close: Effect.Effect<void, SslError>
}

// `write` of every output, shared like the input's `read`.
function write(this: { readonly steps: OutputSteps }, data: Uint8Array | string) {
  // The types say bytes or text; a JavaScript caller can pass anything.
  if (!isData(data)) return invalidData(data)
  return this.steps.write(toBytes(data))
}

// (A Uint8Array from another realm, a vm context say, is one too.)
const isData = (data: unknown): data is Uint8Array | string =>
  typeof data === "string" || data instanceof Uint8Array ||
  Object.prototype.toString.call(data) === "[object Uint8Array]"

const invalidData = (data: unknown) =>
  Effect.fail(
    new InvalidArgumentError({ argument: "data", value: data, reason: "expected a Uint8Array or a string" })
  )

const outputGetters: ReadonlyArray<readonly [string, PropertyDescriptor]> = [
  [
    "flush",
    lazy(function(this: StepsOutput) {
      return this.steps.flush
    })
  ],
  [
    "close",
    lazy(function(this: StepsOutput) {
      return this.steps.close
    })
  ],
  [
    "sink",
    lazy(function(this: StepsOutput) {
      const steps = this.steps
      return Sink.forEach((data: Uint8Array | string) => isData(data) ? steps.write(toBytes(data)) : invalidData(data))
    })
  ]
]

/** An Output over its steps; own properties like the input's (see `defineLazy`). */
class StepsOutput implements Output {
  readonly write: Output["write"] = write.bind(this)
  declare readonly flush: Effect.Effect<void, SslError>
  declare readonly close: Effect.Effect<void, SslError>
  declare readonly sink: Sink.Sink<void, Uint8Array | string, never, SslError>

  constructor(readonly steps: OutputSteps) {
    defineLazy(this, outputGetters)
  }
}

/**
 * Builds an Output from a write function and its flush and close steps; `sink` and string
 * encoding come for free.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeOutput = (options: OutputSteps): Output => new StepsOutput(options)

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
