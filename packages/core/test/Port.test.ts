import { Port, SslError } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { pick, prng, randomInt } from "./helpers/Random.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (s: string) => encoder.encode(s)
const text = (b: Uint8Array) => decoder.decode(b)

/** "Uint8Array" for a plain one; else the name of what it is (a Buffer, say). */
const kindOf = (bytes: Uint8Array) =>
  Object.getPrototypeOf(bytes) === Uint8Array.prototype ? "Uint8Array" : bytes.constructor.name

/** n bytes whose values depend on their position, so loss, duplication and reordering all show. */
const numbered = (n: number, salt = 0): Uint8Array => {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 7 + (i >>> 8) * 13 + (i >>> 16) * 17 + salt) & 255
  return out
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

/** Byte-for-byte equality, fast enough for megabytes (toEqual walks a typed array slowly). */
const sameBytes = (x: Uint8Array, y: Uint8Array) =>
  x.length === y.length &&
  Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.length), Buffer.from(y.buffer, y.byteOffset, y.length)) === 0

/** Writes `data` in pieces of `size` bytes, then closes the output. */
const writeInPieces = (output: Port.Output, data: Uint8Array, size: number) =>
  Effect.gen(function*() {
    for (let offset = 0; offset < data.length; offset += size) {
      yield* output.write(data.subarray(offset, offset + size))
    }
    yield* output.close
  })

/** Gives every other fiber many chances to run. */
const yieldMany = (n = 100) => Effect.repeatN(Effect.yieldNow(), n)

/** Each effect in a fiber of its own, all started at once. */
const forkEach = <A, E>(effects: ReadonlyArray<Effect.Effect<A, E>>) =>
  Effect.all(effects.map((effect) => Effect.fork(effect)), { concurrency: "unbounded" })

/** Runs an effect in a fiber and reports, through a Deferred, when it has completed. */
const forkTracked = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const done = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(Effect.ensuring(effect, Deferred.succeed(done, undefined)))
    return { fiber, done } as const
  })

const expectIoError = (result: Either.Either<unknown, unknown>, reason: SslError.IoReason) => {
  expect(Either.isLeft(result)).toBe(true)
  const error = (result as Either.Left<unknown, unknown>).left
  expect(error).toBeInstanceOf(SslError.IoError)
  expect((error as SslError.IoError).reason).toBe(reason)
}

/** `gc()`, which vitest's workers do not expose by default. */
const collectGarbage = (): () => void => {
  v8.setFlagsFromString("--expose-gc")
  return vm.runInNewContext("gc") as () => void
}

/** `effect` forked, left to start waiting, then interrupted. */
const interruptedWhileWaiting = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.fork(effect), (fiber) => Effect.zipRight(Effect.yieldNow(), Fiber.interrupt(fiber)))

/** How much the heap grows over 50,000 rounds of `round` (after 200 that compile what it runs). */
const heapGrowthOf = <E>(round: Effect.Effect<unknown, E>) =>
  Effect.gen(function*() {
    const gc = collectGarbage()
    for (let i = 0; i < 200; i++) yield* round
    gc()
    const before = process.memoryUsage().heapUsed
    for (let i = 0; i < 50_000; i++) yield* round
    gc()
    return process.memoryUsage().heapUsed - before
  })

/**
 * In one synchronous step: `before` (a push, an end...), then an interrupt signal to each fiber.
 * The woken fibers have their resume queued and have not run yet: the interrupt comes after it.
 */
const thenInterrupt = (before: () => void, ...fibers: ReadonlyArray<Fiber.RuntimeFiber<any, any>>) =>
  Effect.sync(() => {
    before()
    for (const fiber of fibers) fiber.unsafeInterruptAsFork(FiberId.none)
  })

/** A read failed with UnexpectedEof (a readExactly cut short by the end). */
const unexpectedEof = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) &&
  Option.exists(
    Cause.failureOption(exit.cause),
    (e) => e instanceof SslError.IoError && e.reason === "UnexpectedEof"
  )

/** `k` steps that do nothing: moves where a fiber's next yield to the scheduler falls. */
const spin = (k: number): Effect.Effect<void> => k === 0 ? Effect.void : Effect.flatMap(Effect.void, () => spin(k - 1))

/** The channel's take-and-continue-in-one-step, which Port's gathering reads use. */
interface Internal {
  takeThen<A>(
    max: number | undefined,
    f: (chunk: Option.Option<Uint8Array>) => Effect.Effect<A>
  ): Effect.Effect<A, SslError.SslError>
}

/** An input over a channel the test pushes into synchronously. */
const channelInput = (capacity = 1 << 20) =>
  Effect.sync(() => {
    const channel = Port.makeChannel(capacity)
    return { channel, input: Port.makeInput(channel) } as const
  })

describe("Port.pipe", () => {
  for (const capacity of [1, 10, 100, undefined]) {
    const label = capacity === undefined ? "default capacity" : `capacity ${capacity}`

    it.effect(`carries bytes in order in both directions at once (${label})`, () =>
      Effect.gen(function*() {
        const [a, b] = yield* Port.pipe(capacity === undefined ? {} : { capacity })
        const aToB = numbered(5000, 1)
        const bToA = numbered(3000, 2)
        const [gotB, gotA] = yield* Effect.all([
          b.input.readAll,
          a.input.readAll,
          writeInPieces(a.output, aToB, 37),
          writeInPieces(b.output, bToA, 113)
        ], { concurrency: "unbounded" })
        expect(gotB).toEqual(aToB)
        expect(gotA).toEqual(bToA)
      }))
  }

  it.effect("is full duplex: 1 MiB each way at the same time through capacity 100", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const aToB = numbered(1 << 20, 3)
      const bToA = numbered(1 << 20, 4)
      // one big write each way: each side's write can only finish if the other side reads meanwhile
      const [, , gotB, gotA] = yield* Effect.all([
        Effect.zipRight(a.output.write(aToB), a.output.close),
        Effect.zipRight(b.output.write(bToA), b.output.close),
        b.input.readAll,
        a.input.readAll
      ], { concurrency: "unbounded" })
      expect(sameBytes(gotB, aToB)).toBe(true)
      expect(sameBytes(gotA, bToA)).toBe(true)
    }))

  it.effect("a writer waits while capacity bytes are unread (backpressure)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 10 })
      // exactly capacity bytes fit without a reader
      yield* a.output.write("0123456789")
      const pending = yield* forkTracked(a.output.write("X"))
      yield* yieldMany()
      expect(yield* Deferred.isDone(pending.done)).toBe(false)
      // one byte read makes room for one byte
      const first = yield* b.input.read(1)
      expect(Option.map(first, text)).toEqual(Option.some("0"))
      yield* Deferred.await(pending.done)
      expect(Exit.isSuccess(yield* Fiber.await(pending.fiber))).toBe(true)
      yield* a.output.close
      expect(text(yield* b.input.readAll)).toBe("123456789X")
    }))

  it.effect("a write larger than the capacity completes only as the reader drains it", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 4 })
      const pending = yield* forkTracked(a.output.write("abcdefghij"))
      yield* yieldMany()
      expect(yield* Deferred.isDone(pending.done)).toBe(false)
      expect(text(yield* b.input.readExactly(4))).toBe("abcd")
      yield* yieldMany()
      // 6 bytes left to write, only 4 fit
      expect(yield* Deferred.isDone(pending.done)).toBe(false)
      expect(text(yield* b.input.readExactly(2))).toBe("ef")
      yield* Deferred.await(pending.done)
      expect(text(yield* b.input.readExactly(4))).toBe("ghij")
    }))

  it.effect("the same direction's buffer fills independently of the other direction", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 3 })
      yield* a.output.write("abc") // a -> b is now full
      // b -> a still has room, and a can read it while its own writes are blocked
      yield* b.output.write("xyz")
      expect(text(yield* a.input.readExactly(3))).toBe("xyz")
      expect(text(yield* b.input.readExactly(3))).toBe("abc")
    }))

  it.effect("closing an output gives the other end EOF after the buffered bytes", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      yield* a.output.write("hello ")
      yield* a.output.write("world")
      yield* a.output.close
      expect(text(yield* b.input.readExactly(6))).toBe("hello ")
      expect(Option.map(yield* b.input.read(), text)).toEqual(Option.some("world"))
      expect(yield* b.input.read()).toEqual(Option.none())
      expect(yield* b.input.read(5)).toEqual(Option.none()) // EOF stays
      expect(yield* b.input.readLine).toEqual(Option.none())
      expect(yield* b.input.readAll).toEqual(new Uint8Array(0))
    }))

  it.effect("a reader waiting for data sees EOF when the writer closes", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      const reader = yield* Effect.fork(b.input.read())
      yield* yieldMany(10)
      yield* a.output.close
      expect(yield* Fiber.join(reader)).toEqual(Option.none())
    }))

  it.effect("readAll returns everything written before close; the stream ends there", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 7 })
      const data = numbered(1000, 5)
      const [all] = yield* Effect.all([b.input.readAll, writeInPieces(a.output, data, 3)], { concurrency: 2 })
      expect(all).toEqual(data)

      const [c, d] = yield* Port.pipe({ capacity: 7 })
      const [chunks] = yield* Effect.all([Stream.runCollect(d.input.stream), writeInPieces(c.output, data, 10)], {
        concurrency: 2
      })
      expect(concat(Chunk.toReadonlyArray(chunks))).toEqual(data)
      for (const chunk of chunks) expect(chunk.length).toBeGreaterThan(0)
    }))

  it.effect("writing after close fails with IoError Closed", () =>
    Effect.gen(function*() {
      const [a] = yield* Port.pipe()
      yield* a.output.close
      expectIoError(yield* Effect.either(a.output.write("late")), "Closed")
      expectIoError(yield* Effect.either(a.output.write(new Uint8Array([1]))), "Closed")
    }))

  it.effect("closing an input makes the other end's pending and later writes fail with BrokenPipe", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 2 })
      const pending = yield* Effect.fork(Effect.either(a.output.write("abcdef")))
      yield* yieldMany()
      expect(yield* Fiber.poll(pending)).toEqual(Option.none()) // blocked on a full buffer
      yield* b.input.close
      expectIoError(yield* Fiber.join(pending), "BrokenPipe")
      expectIoError(yield* Effect.either(a.output.write("x")), "BrokenPipe")
      // the other direction is unaffected
      const [back] = yield* Effect.all([a.input.readAll, writeInPieces(b.output, bytes("still"), 5)], {
        concurrency: 2
      })
      expect(text(back)).toBe("still")
    }))

  it.effect("reading a closed input fails with IoError Closed, also for a read pending at the time", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      const pending = yield* Effect.fork(Effect.either(b.input.read()))
      yield* yieldMany(10)
      yield* b.input.close
      expectIoError(yield* Fiber.join(pending), "Closed")
      yield* a.output.write("ignored").pipe(Effect.ignore)
      expectIoError(yield* Effect.either(b.input.read()), "Closed")
      expectIoError(yield* Effect.either(b.input.readExactly(1)), "Closed")
      expectIoError(yield* Effect.either(b.input.readLine), "Closed")
      expectIoError(yield* Effect.either(b.input.readAll), "Closed")
    }))

  it.effect("rejects a capacity that is not a positive integer", () =>
    Effect.gen(function*() {
      for (const capacity of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        const error = yield* Effect.flip(Port.pipe({ capacity }))
        expect(error).toBeInstanceOf(SslError.InvalidArgumentError)
        expect(error.argument).toBe("capacity")
        expect(error.message).toContain("capacity")
      }
    }))

  it.effect("a writer may reuse its buffer once write has returned", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const buffer = new Uint8Array(4)
      for (const s of ["abcd", "efgh", "ijkl"]) {
        buffer.set(bytes(s))
        yield* a.output.write(buffer)
      }
      buffer.fill(0)
      yield* a.output.close
      expect(text(yield* b.input.readAll)).toBe("abcdefghijkl")
    }))

  // Node's Buffer is a Uint8Array whose `slice` shares memory: a copy made with it is no copy.
  it.effect("a writer may reuse a Buffer, or a view into a larger one, once write has returned", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const pooled = Buffer.from("--abcd--")
      const view = pooled.subarray(2, 6)
      yield* a.output.write(view)
      pooled.fill(0)
      const buffer = Buffer.alloc(4)
      for (const s of ["efgh", "ijkl"]) {
        buffer.write(s)
        yield* a.output.write(buffer)
      }
      buffer.fill(0)
      yield* a.output.close
      expect(text(yield* b.input.readAll)).toBe("abcdefghijkl")
    }))

  it.effect("hands out plain Uint8Arrays whose .buffer holds just their bytes, whatever was written", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1000 })
      // A length-prefixed message written as a view into a Buffer (Node's are pooled: the pool's
      // other bytes share its ArrayBuffer).
      const message = Buffer.alloc(9)
      message.writeUInt8(0x52, 0)
      message.writeInt32BE(8, 1)
      message.writeInt32BE(0x01020304, 5)
      yield* a.output.write(Buffer.concat([Buffer.from("xx"), message]).subarray(2))
      yield* a.output.write(Buffer.from("tail"))
      yield* a.output.close
      const header = yield* b.input.readExactly(5)
      expect(kindOf(header)).toBe("Uint8Array")
      // A protocol decoder's habit: a DataView over a copy's buffer.
      const view = new DataView(header.slice().buffer)
      expect([view.getUint8(0), view.getInt32(1)]).toEqual([0x52, 8])
      const body = yield* b.input.readExactly(4)
      expect(kindOf(body)).toBe("Uint8Array")
      expect(new DataView(body.slice().buffer).getInt32(0)).toBe(0x01020304)
      const rest = yield* b.input.read()
      expect(Option.map(rest, kindOf)).toEqual(Option.some("Uint8Array"))
      expect(Option.map(rest, text)).toEqual(Option.some("tail"))
    }))
})

describe("Port.Input", () => {
  it.effect("read(max) returns at most max bytes and at least one", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      yield* a.output.write("0123456789")
      expect(Option.map(yield* b.input.read(3), text)).toEqual(Option.some("012"))
      expect(Option.map(yield* b.input.read(1), text)).toEqual(Option.some("3"))
      expect(Option.map(yield* b.input.read(100), text)).toEqual(Option.some("456789"))
      // with nothing buffered, read waits for the first byte and returns what is there
      const reader = yield* Effect.fork(b.input.read(100))
      yield* yieldMany(10)
      expect(yield* Fiber.poll(reader)).toEqual(Option.none())
      yield* a.output.write("z")
      expect(Option.map(yield* Fiber.join(reader), text)).toEqual(Option.some("z"))
    }))

  it.effect("read() without a limit returns a non-empty chunk", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      yield* a.output.write("abc")
      const got = yield* b.input.read()
      expect(Option.isSome(got)).toBe(true)
      expect(Option.getOrThrow(got).length).toBeGreaterThan(0)
      expect(text(Option.getOrThrow(got))).toBe("abc".slice(0, Option.getOrThrow(got).length))
    }))

  it.effect("read(0) returns no bytes at once and consumes nothing", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      // does not wait, even though nothing is buffered
      const empty = yield* b.input.read(0)
      expect(Option.map(empty, (x) => x.length)).toEqual(Option.some(0))
      yield* a.output.write("ab")
      expect(Option.map(yield* b.input.read(0), (x) => x.length)).toEqual(Option.some(0))
      expect(Option.map(yield* b.input.read(), text)).toEqual(Option.some("ab"))
    }))

  it.effect("a negative or fractional count is an InvalidArgumentError naming the argument", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      yield* a.output.write("abc")
      for (const max of [-1, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(b.input.read(max))
        expect(error).toBeInstanceOf(SslError.InvalidArgumentError)
        expect((error as SslError.InvalidArgumentError).argument).toBe("maxBytes")
      }
      for (const n of [-1, 2.5]) {
        const error = yield* Effect.flip(b.input.readExactly(n))
        expect(error).toBeInstanceOf(SslError.InvalidArgumentError)
        expect((error as SslError.InvalidArgumentError).argument).toBe("n")
      }
      // nothing was consumed by the rejected calls
      expect(text(yield* b.input.readExactly(3))).toBe("abc")
    }))

  it.effect("readExactly gathers the bytes across many small chunks", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1 })
      const data = numbered(300, 6)
      const [first, second] = yield* Effect.all([
        b.input.readExactly(250),
        b.input.readExactly(50),
        writeInPieces(a.output, data, 1)
      ], { concurrency: "unbounded" }).pipe(Effect.map(([x, y]) => [x, y] as const))
      expect(concat([first, second])).toEqual(data)
      expect(first.length).toBe(250)
      expect(yield* b.input.readExactly(0)).toEqual(new Uint8Array(0))
    }))

  it.effect("readExactly fails with UnexpectedEof when the input ends first, keeping the partial bytes", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1 })
      const [result] = yield* Effect.all([
        Effect.either(b.input.readExactly(10)),
        writeInPieces(a.output, bytes("short"), 1)
      ], { concurrency: 2 })
      expectIoError(result, "UnexpectedEof")
      expect(text(yield* b.input.readAll)).toBe("short")
    }))

  it.effect("readLine splits on \\n and \\r\\n, keeps empty lines, returns a last line without newline, then None", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 3 })
      const input = "first\nsecond\r\n\n\r\nfifth has spaces\r\nlast"
      const [lines] = yield* Effect.all([
        Effect.gen(function*() {
          const out: Array<string> = []
          while (true) {
            const line = yield* b.input.readLine
            if (Option.isNone(line)) return out
            out.push(line.value)
          }
        }),
        writeInPieces(a.output, bytes(input), 2)
      ], { concurrency: 2 })
      expect(lines).toEqual(["first", "second", "", "", "fifth has spaces", "last"])
      expect(yield* b.input.readLine).toEqual(Option.none())
    }))

  it.effect("readLine decodes multi-byte UTF-8 split across chunks, one byte at a time", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1 })
      const lines = ["héllo wörld", "日本語のテキスト", "emoji 😀🎉 done", "", "ascii"]
      const [got] = yield* Effect.all([
        Effect.all(Array.from({ length: 6 }, () => b.input.readLine)),
        writeInPieces(a.output, bytes(lines.join("\r\n") + "\n"), 1)
      ], { concurrency: 2 })
      expect(got).toEqual([...lines.map(Option.some), Option.none()])
    }))

  it.effect("readLine strips only a \\r that ends a \\r\\n: a lone \\r stays in the line", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      yield* a.output.write("a\rb\r\nprogress 50%\r")
      yield* a.output.close
      expect(yield* b.input.readLine).toEqual(Option.some("a\rb"))
      expect(yield* b.input.readLine).toEqual(Option.some("progress 50%\r"))
      expect(yield* b.input.readLine).toEqual(Option.none())
    }))

  it.effect("readLine leaves the bytes after the newline for the next read", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      yield* a.output.write("line one\nrest of it")
      yield* a.output.close
      expect(yield* b.input.readLine).toEqual(Option.some("line one"))
      expect(text(yield* b.input.readAll)).toBe("rest of it")
    }))

  it.effect("stream emits every byte and ends at EOF", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 10 })
      const data = numbered(777, 8)
      const [chunks] = yield* Effect.all([
        Stream.runCollect(b.input.stream),
        writeInPieces(a.output, data, 9)
      ], { concurrency: 2 })
      expect(concat(Chunk.toReadonlyArray(chunks))).toEqual(data)
    }))

  it.effect("output.sink writes a stream of strings and bytes", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 5 })
      const items: ReadonlyArray<string | Uint8Array> = ["héllo", bytes(" "), "wörld", new Uint8Array([33, 10])]
      const [all] = yield* Effect.all([
        b.input.readAll,
        Effect.zipRight(Stream.run(Stream.fromIterable(items), a.output.sink), a.output.close)
      ], { concurrency: 2 })
      expect(text(all)).toBe("héllo wörld!\n")
    }))

  it.effect("output.sink fails with the write's error", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 5 })
      yield* b.input.close
      expectIoError(yield* Effect.either(Stream.run(Stream.make("x"), a.output.sink)), "BrokenPipe")
    }))
})

describe("Port.makeInput / makeOutput", () => {
  it.effect("an input and an output copied with spread work like the originals", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const output: Port.Output = { ...a.output }
      const input: Port.Input = { ...b.input }
      yield* output.write("one\ntwo\n")
      yield* Stream.run(Stream.make("three ", bytes("four")), output.sink)
      yield* output.flush
      yield* output.close
      expect(yield* input.readLine).toEqual(Option.some("one"))
      expect(text(yield* input.readExactly(2))).toBe("tw")
      expect(Option.map(yield* input.read(1), text)).toEqual(Option.some("o"))
      expect(text(yield* input.readAll)).toBe("\nthree four")
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(input.stream))).toEqual([])
      yield* input.close
      expectIoError(yield* Effect.either(b.input.read()), "Closed")
    }))

  it.effect("a failure given as a function is made once, when a reader reaches it", () =>
    Effect.gen(function*() {
      const channel = Port.makeChannel(100)
      let made = 0
      channel.push(bytes("last bytes"))
      channel.fail(() => {
        made++
        return new SslError.IoError({ operation: "read", reason: "Reset" })
      })
      expect(made).toBe(0)
      const input = Port.makeInput(channel)
      expect(text(yield* input.readExactly(10))).toBe("last bytes")
      expect(made).toBe(0)
      const first = yield* Effect.flip(input.read())
      const second = yield* Effect.flip(input.read())
      expect(first).toMatchObject({ _tag: "IoError", reason: "Reset" })
      expect(second).toBe(first)
      expect(made).toBe(1)
    }))

  it.effect("writing something that is neither bytes nor text fails with InvalidArgumentError", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      for (const data of [null, undefined, 42, [1, 2, 3], { length: 1 }]) {
        const error = yield* Effect.flip(a.output.write(data as unknown as string))
        expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "data" })
        const viaSink = yield* Effect.flip(Stream.run(Stream.make(data as unknown as string), a.output.sink))
        expect(viaSink).toMatchObject({ _tag: "InvalidArgumentError", argument: "data" })
      }
      // Nothing reached the other end, and the port still works, with bytes from another realm too.
      yield* a.output.write("ok")
      expect(Option.map(yield* b.input.read(), text)).toEqual(Option.some("ok"))
      yield* a.output.write(vm.runInNewContext("new Uint8Array([104, 105])") as Uint8Array)
      expect(Option.map(yield* b.input.read(), text)).toEqual(Option.some("hi"))
    }))

  it.effect("read, readExactly and write taken off their port still work", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 100 })
      const { write } = a.output
      const { read, readExactly } = b.input
      yield* write("abcdef")
      expect(text(yield* readExactly(2))).toBe("ab")
      expect(Option.map(yield* read(3), text)).toEqual(Option.some("cde"))
      expect(Option.map(yield* read(), text)).toEqual(Option.some("f"))
    }))

  it.effect("several readers waiting at once are all served, in any order, with every byte once", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 4 })
      const readers = yield* forkEach(Array.from({ length: 5 }, () => b.input.readExactly(3)))
      yield* yieldMany(10)
      // one of them is interrupted while waiting: it takes nothing with it
      expect(Exit.isInterrupted(yield* Fiber.interrupt(readers[2]!))).toBe(true)
      yield* writeInPieces(a.output, bytes("abcdefghijkl"), 1)
      const got = yield* Effect.forEach([0, 1, 3, 4], (i) => Fiber.join(readers[i]!))
      expect(got.map(text).sort().join("")).toBe("abcdefghijkl")
    }))

  it.effect("several writers waiting for room at once all finish once the reader drains", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 2 })
      const writers = yield* forkEach(["ab", "cd", "ef", "gh"].map((s) => a.output.write(s)))
      yield* yieldMany(10)
      const all = yield* Effect.fork(b.input.readExactly(8))
      yield* Effect.forEach(writers, Fiber.join)
      expect(text(yield* Fiber.join(all)).split("").sort().join("")).toBe("abcdefgh")
    }))

  it.live("hundreds of readers and writers waiting at once on one pipe are all served", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1 })
      const readers = yield* forkEach(Array.from({ length: 300 }, () => b.input.readExactly(1)))
      yield* yieldMany(10)
      const writers = yield* forkEach(Array.from({ length: 300 }, (_, i) => a.output.write(new Uint8Array([i & 255]))))
      // (a waiter never woken fails here, not at the test's own timeout)
      yield* Effect.timeout(Effect.forEach(writers, Fiber.join), "10 seconds")
      const got = yield* Effect.timeout(Effect.forEach(readers, Fiber.join), "10 seconds")
      expect(got.map((chunk) => chunk[0]!).sort((x, y) => x - y)).toEqual(
        Array.from({ length: 300 }, (_, i) => i & 255).sort((x, y) => x - y)
      )
    }))
})

describe("Port.Input under interruption", () => {
  it.effect("an interrupted pending read loses nothing: the bytes come with the next read", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      const reader = yield* Effect.fork(b.input.read())
      yield* yieldMany(10)
      expect(Exit.isInterrupted(yield* Fiber.interrupt(reader))).toBe(true)
      yield* a.output.write("after")
      expect(Option.map(yield* b.input.read(), text)).toEqual(Option.some("after"))
    }))

  it.effect("an interrupted read under Effect.timeout loses nothing", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      const timedOut = yield* Effect.either(Effect.timeout(b.input.read(), 0))
      expect(Either.isLeft(timedOut)).toBe(true)
      yield* a.output.write("data")
      expect(Option.map(yield* b.input.read(), text)).toEqual(Option.some("data"))
    }))

  it.live("reads interrupted again and again on an idle input hold on to nothing", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      // a program polling an idle connection: a read under a timeout, again and again
      const grown = yield* heapGrowthOf(interruptedWhileWaiting(b.input.read()))
      // kept, every interrupted read would hold its fiber (measured so: 81 MiB for these 50,000)
      expect(grown).toBeLessThan(4 * 1024 * 1024)
      yield* a.output.write("after")
      expect(Option.map(yield* b.input.read(), text)).toEqual(Option.some("after"))
    }))

  it.live("writes interrupted again and again while waiting for room hold on to nothing", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1 })
      yield* a.output.write("x")
      const grown = yield* heapGrowthOf(interruptedWhileWaiting(a.output.write("y")))
      expect(grown).toBeLessThan(4 * 1024 * 1024)
      // none of them wrote anything
      expect(text(yield* b.input.readExactly(1))).toBe("x")
      yield* a.output.write("z")
      expect(Option.map(yield* b.input.read(), text)).toEqual(Option.some("z"))
    }))

  it.effect("readExactly interrupted after some bytes arrived gives them back, in order", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1 })
      const reader = yield* Effect.fork(b.input.readExactly(10))
      // with capacity 1, these writes finish only once the reader has taken "abcd"
      yield* a.output.write("abcd")
      yield* a.output.write("e")
      expect(Exit.isInterrupted(yield* Fiber.interrupt(reader))).toBe(true)
      expect(text(yield* b.input.readExactly(4))).toBe("abcd")
      const [rest] = yield* Effect.all([b.input.readAll, writeInPieces(a.output, bytes("fgh"), 1)], {
        concurrency: 2
      })
      expect(text(rest)).toBe("efgh")
    }))

  it.effect("readLine interrupted mid-line gives the partial line back", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1 })
      const reader = yield* Effect.fork(b.input.readLine)
      yield* a.output.write("hel")
      yield* a.output.write("l") // finishes only once "hel" has been taken
      expect(Exit.isInterrupted(yield* Fiber.interrupt(reader))).toBe(true)
      const [lines] = yield* Effect.all([
        Effect.all([b.input.readLine, b.input.readLine, b.input.readLine]),
        writeInPieces(a.output, bytes("o\nworld\n"), 1)
      ], { concurrency: 2 })
      expect(lines).toEqual([Option.some("hello"), Option.some("world"), Option.none()])
    }))

  it.effect("readAll interrupted before EOF gives everything back", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 1 })
      const reader = yield* Effect.fork(b.input.readAll)
      yield* a.output.write("12345")
      yield* a.output.write("6")
      expect(Exit.isInterrupted(yield* Fiber.interrupt(reader))).toBe(true)
      const [all] = yield* Effect.all([b.input.readAll, writeInPieces(a.output, bytes("789"), 2)], {
        concurrency: 2
      })
      expect(text(all)).toBe("123456789")
    }))

  it.effect("random interruptions of every kind of read lose and duplicate nothing (seeded)", () =>
    Effect.gen(function*() {
      for (let seed = 1; seed <= 30; seed++) {
        const rng = prng(seed)
        const capacity = pick(rng, [1, 3, 64, 1 << 20])
        const total = randomInt(rng, 500, 6000)
        // lowercase letters numbered by position, with random newlines for readLine
        const data = new Uint8Array(total)
        for (let i = 0; i < total; i++) data[i] = rng() < 0.03 ? 10 : 97 + (i % 26)
        const pieces: Array<number> = []
        for (let left = total; left > 0;) {
          const n = Math.min(left, randomInt(rng, 1, 16))
          pieces.push(n)
          left -= n
        }
        const [a, b] = yield* Port.pipe({ capacity })
        const writer = yield* Effect.fork(Effect.gen(function*() {
          let offset = 0
          for (const n of pieces) {
            yield* a.output.write(data.subarray(offset, offset + n))
            offset += n
          }
          yield* a.output.close
        }))

        type Got = { readonly bytes: Uint8Array; readonly eof: boolean; readonly line?: boolean }
        let pos = 0
        let rounds = 0
        const expectAt = (got: Uint8Array, where: string) => {
          expect(got, `seed ${seed}: ${where} at ${pos}`).toEqual(data.subarray(pos, pos + got.length))
          pos += got.length
        }
        while (true) {
          rounds++
          expect(rounds, `seed ${seed}: no progress`).toBeLessThan(100_000)
          const k = randomInt(rng, 1, 400)
          const kind = pick(rng, ["read", "readExactly", "readLine", "readAll"] as const)
          const op: Effect.Effect<Got, SslError.SslError> = kind === "read"
            ? Effect.map(b.input.read(k), (o) => ({
              bytes: Option.getOrElse(o, () => new Uint8Array(0)),
              eof: Option.isNone(o)
            }))
            : kind === "readExactly"
            ? b.input.readExactly(k).pipe(
              Effect.map((bytes): Got => ({ bytes, eof: false })),
              Effect.catchIf(
                (e) => e._tag === "IoError" && e.reason === "UnexpectedEof",
                () => Effect.succeed<Got>({ bytes: new Uint8Array(0), eof: false })
              )
            )
            : kind === "readLine"
            ? Effect.map(b.input.readLine, (o) => ({
              bytes: Option.match(o, { onNone: () => new Uint8Array(0), onSome: bytes }),
              eof: Option.isNone(o),
              line: true
            }))
            : Effect.map(b.input.readAll, (bytes) => ({ bytes, eof: true }))
          const fiber = yield* Effect.fork(op)
          yield* Effect.repeatN(Effect.yieldNow(), randomInt(rng, 0, 40))
          const exit = yield* Fiber.interrupt(fiber)
          if (Exit.isFailure(exit)) {
            expect(Exit.isInterrupted(exit), `seed ${seed}: ${kind} failed`).toBe(true)
            continue
          }
          const got = exit.value
          if (kind === "readExactly" && got.bytes.length > 0) expect(got.bytes.length).toBe(k)
          if (kind === "read" && !got.eof) expect(got.bytes.length).toBeGreaterThan(0)
          if (kind === "read") expect(got.bytes.length).toBeLessThanOrEqual(k)
          expectAt(got.bytes, kind)
          if (got.line === true && !got.eof && pos < total) {
            expect(data[pos], `seed ${seed}: line not ended by a newline`).toBe(10)
            pos++
          }
          if (got.eof) break
        }
        expect(pos, `seed ${seed}`).toBe(total)
        expect(Exit.isSuccess(yield* Fiber.await(writer))).toBe(true)
      }
    }))

  it.effect("interrupting long gathering reads over many buffered chunks loses nothing (seeded)", () =>
    Effect.gen(function*() {
      const rng = prng(42)
      for (let round = 0; round < 12; round++) {
        const [a, b] = yield* Port.pipe({ capacity: 1 << 20 })
        // many one-byte chunks: a gathering read runs long enough to be interrupted mid-way
        const total = 20_000
        const data = new Uint8Array(total)
        for (let i = 0; i < total; i++) data[i] = (i % 40 === 39) ? 10 : 65 + (i % 23)
        for (let i = 0; i < total; i++) yield* a.output.write(data.subarray(i, i + 1))
        yield* a.output.close
        let pos = 0
        while (pos < total) {
          const kind = pick(rng, ["readExactly", "readAll", "readLine"] as const)
          const op: Effect.Effect<Uint8Array, SslError.SslError> = kind === "readExactly"
            ? b.input.readExactly(Math.min(total - pos, randomInt(rng, 1, 5000)))
            : kind === "readAll"
            ? b.input.readAll
            : Effect.map(b.input.readLine, (o) => bytes(Option.getOrElse(o, () => "") + "\n"))
          const fiber = yield* Effect.fork(op)
          yield* Effect.repeatN(Effect.yieldNow(), randomInt(rng, 0, 8))
          const exit = yield* Fiber.interrupt(fiber)
          if (Exit.isSuccess(exit)) {
            expect(exit.value, `round ${round}: ${kind} at ${pos}`).toEqual(
              data.subarray(pos, pos + exit.value.length)
            )
            pos += exit.value.length
          } else {
            expect(Exit.isInterrupted(exit)).toBe(true)
          }
        }
        expect(yield* b.input.read()).toEqual(Option.none())
      }
    }))
})

describe("Port.Input: woken readers and interruption", () => {
  it.effect("a reader woken by data but interrupted before it runs takes nothing: the bytes go to the next read", () =>
    Effect.gen(function*() {
      const { channel, input } = yield* channelInput()
      const reads = {
        read: Effect.map(input.read(), Option.getOrThrow),
        "read(2)": Effect.map(input.read(2), Option.getOrThrow),
        readExactly: input.readExactly(2),
        readLine: Effect.map(input.readLine, (line) => bytes(Option.getOrThrow(line))),
        readAll: input.readAll
      }
      for (const [name, read] of Object.entries(reads)) {
        const reader = yield* Effect.fork(read)
        yield* yieldMany(10)
        yield* thenInterrupt(() => channel.push(bytes("ab")), reader)
        expect(Exit.isInterrupted(yield* Fiber.await(reader)), name).toBe(true)
        expect(channel.buffered, name).toBe(2)
        expect(Option.map(yield* input.read(), text), name).toEqual(Option.some("ab"))
      }
    }))

  it.effect("a gathering read woken for its last bytes but interrupted before it runs gives all back, in order", () =>
    Effect.gen(function*() {
      const { channel, input } = yield* channelInput()
      const reads: ReadonlyArray<readonly [string, Effect.Effect<unknown, SslError.SslError>]> = [
        ["readExactly", input.readExactly(6)],
        ["readLine", input.readLine]
      ]
      for (const [name, read] of reads) {
        const reader = yield* Effect.fork(read)
        yield* yieldMany(10)
        channel.push(bytes("abc"))
        yield* yieldMany(10) // the reader has gathered "abc" and waits again
        expect(channel.buffered, name).toBe(0)
        yield* thenInterrupt(() => channel.push(bytes("de\n")), reader)
        expect(Exit.isInterrupted(yield* Fiber.await(reader)), name).toBe(true)
        expect(text(yield* input.readExactly(6)), name).toBe("abcde\n")
      }
    }))

  it.effect("two fibers waiting on the same read(): the one interrupted after its wake leaves the bytes to the other", () =>
    Effect.gen(function*() {
      const { channel, input } = yield* channelInput()
      // input.read() is one effect, made once per channel: both fibers run the same step and wait
      expect(input.read()).toBe(input.read())
      for (const interruptFirst of [true, false]) {
        const first = yield* Effect.fork(input.read()) // takes the waiting reader's slot
        yield* yieldMany(10)
        const second = yield* Effect.fork(input.read()) // waits beside it
        yield* yieldMany(10)
        const [interrupted, other] = interruptFirst ? [first, second] : [second, first]
        yield* thenInterrupt(() => channel.push(bytes("xy")), interrupted)
        expect(Exit.isInterrupted(yield* Fiber.await(interrupted))).toBe(true)
        expect(Option.map(yield* Fiber.join(other), text)).toEqual(Option.some("xy"))
        expect(channel.buffered).toBe(0)
      }
    }))

  it.effect("after a reader is interrupted in the slot, two more on the same read() get each chunk exactly once", () =>
    Effect.gen(function*() {
      const { channel, input } = yield* channelInput()
      const stale = yield* Effect.fork(input.read())
      yield* yieldMany(10)
      expect(Exit.isInterrupted(yield* Fiber.interrupt(stale))).toBe(true)
      const readers = [yield* Effect.fork(input.read()), yield* Effect.fork(input.read())]
      yield* yieldMany(10)
      channel.push(bytes("1"))
      yield* yieldMany(10)
      // one has it, the other waits again (woken, found nothing, registered anew)
      const done = readers.filter((fiber) => fiber.unsafePoll() !== null)
      expect(done.length).toBe(1)
      channel.push(bytes("2"))
      const got = yield* Effect.forEach(readers, Fiber.join)
      expect(got.map((o) => text(Option.getOrThrow(o))).sort()).toEqual(["1", "2"])
    }))

  it.effect("end, failure and closeReader wake every reader waiting on the same step, also one just woken by data", () =>
    Effect.gen(function*() {
      const outcomes = ["end", "fail", "closeReader"] as const
      for (const outcome of outcomes) {
        const { channel, input } = yield* channelInput()
        const readers = yield* Effect.forEach([1, 2, 3], () => Effect.fork(Effect.either(input.read())))
        yield* yieldMany(10)
        // all three woken by the push, and the end comes before any of them has run
        yield* Effect.sync(() => {
          channel.push(bytes("z"))
          if (outcome === "end") channel.end()
          else if (outcome === "fail") channel.fail(new SslError.IoError({ operation: "read", reason: "Reset" }))
          else channel.closeReader()
        })
        const got = yield* Effect.forEach(readers, Fiber.join)
        const kinds = got.map((r) =>
          Either.isLeft(r)
            ? (r.left as SslError.IoError).reason
            : Option.match(r.right, { onNone: () => "EOF", onSome: text })
        ).sort()
        expect(kinds, outcome).toEqual(
          outcome === "end"
            ? ["EOF", "EOF", "z"]
            : outcome === "fail"
            ? ["Reset", "Reset", "z"]
            : ["Closed", "Closed", "Closed"] // closeReader drops "z" before anyone ran
        )
      }
    }))

  it.live("reads interrupted again and again while waiting beside each other on the same read() hold on to nothing", () =>
    Effect.gen(function*() {
      const { channel, input } = yield* channelInput()
      // the first takes the waiting reader's slot (and leaves a stale resume there); the others
      // wait beside it and must unregister when interrupted
      const round = Effect.gen(function*() {
        const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.fork(input.read()))
        yield* Effect.yieldNow()
        yield* Effect.forEach(fibers, Fiber.interrupt)
      })
      const grown = yield* heapGrowthOf(round)
      expect(grown).toBeLessThan(4 * 1024 * 1024)
      channel.push(bytes("after"))
      expect(Option.map(yield* input.read(), text)).toEqual(Option.some("after"))
    }))

  it.live("concurrent readers on shared read effects, interrupted at random around wakes, get every record once (seeded)", () =>
    Effect.gen(function*() {
      // 4-byte records, each a number; every read takes whole records, so records never split
      const record = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])
      const recordsOf = (b: Uint8Array) => {
        expect(b.length % 4).toBe(0)
        const out: Array<number> = []
        for (let i = 0; i < b.length; i += 4) {
          out.push(((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0)
        }
        return out
      }
      for (let seed = 1; seed <= 40; seed++) {
        const rng = prng(seed)
        const { channel, input } = yield* channelInput()
        const received: Array<Array<number>> = []
        // Shared effects: many fibers run the very same step (and its cached wait) at once.
        const shared = [
          Effect.map(input.read(), Option.getOrElse(() => new Uint8Array(0))),
          Effect.map(input.read(8), Option.getOrElse(() => new Uint8Array(0))),
          input.readExactly(8),
          input.readExactly(4)
        ]
        // Readers made to yield to the scheduler every few ops, at a random point of the read: between
        // deciding to wait, registering and suspending, or between their wake and their take. Such a
        // fiber can also yield right after its take, and an interrupt then loses what it took (as with
        // any effect's result), so these record what they take in the step that takes it: the
        // channel's own takeThen, shared by all of them too.
        const recording = (max: number | undefined) =>
          (channel as unknown as Internal).takeThen(max, (chunk) => {
            if (Option.isSome(chunk)) received.push(recordsOf(chunk.value))
            return Effect.succeed(new Uint8Array(0))
          })
        const sharedRecording = [recording(undefined), recording(8)]
        let next = 0
        const total = 400
        const live = new Set<Fiber.RuntimeFiber<Uint8Array, SslError.SslError>>()
        const collect = Effect.sync(() => {
          for (const fiber of [...live]) {
            const exit = fiber.unsafePoll()
            if (exit === null) continue
            live.delete(fiber)
            if (Exit.isSuccess(exit)) received.push(recordsOf(exit.value))
            else expect(Exit.isInterrupted(exit) || unexpectedEof(exit), `seed ${seed}: ${String(exit)}`).toBe(true)
          }
        })
        let steps = 0
        while (next < total || channel.buffered > 0) {
          expect(++steps, `seed ${seed}: no progress`).toBeLessThan(50_000)
          const r = rng()
          if (r < 0.3 || live.size === 0) {
            live.add(
              yield* Effect.fork(
                rng() < 0.5
                  ? pick(rng, shared)
                  : Effect.withMaxOpsBeforeYield(
                    Effect.zipRight(spin(randomInt(rng, 0, 16)), pick(rng, sharedRecording)),
                    16
                  )
              )
            )
          } else if (r < 0.6 && next < total) {
            // push a few records, then interrupt some readers before any woken one runs
            const count = randomInt(rng, 1, 3)
            const victims = [...live].filter(() => rng() < 0.3)
            yield* thenInterrupt(() => {
              for (let i = 0; i < count && next < total; i++) channel.push(record(next++))
            }, ...victims)
          } else if (r < 0.75 && live.size > 0) {
            pick(rng, [...live]).unsafeInterruptAsFork(FiberId.none)
          } else {
            yield* Effect.repeatN(Effect.yieldNow(), randomInt(rng, 0, 5))
          }
          yield* collect
        }
        channel.end()
        yield* Effect.forEach([...live], (fiber) => Fiber.await(fiber))
        yield* collect
        // readExactly readers cut short by the end gave their bytes back: they come with readAll
        received.push(recordsOf(yield* input.readAll))
        expect(received.flat().sort((x, y) => x - y), `seed ${seed}`).toEqual(
          Array.from({ length: total }, (_, i) => i)
        )
      }
    }))
})

describe("Port.pipe memory", () => {
  it.live("backpressure keeps memory flat: 256 MiB through a 64 KiB pipe to a slow reader", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe({ capacity: 64 * 1024 })
      const chunk = 64 * 1024
      const count = 4096 // 256 MiB
      // measure what is retained, not garbage waiting for a collection
      const gc = collectGarbage()
      gc()
      const start = process.memoryUsage()
      let peakHeap = start.heapUsed
      let peakBuffers = start.arrayBuffers
      let samples = 0
      const sample = () => {
        gc()
        samples++
        const now = process.memoryUsage()
        peakHeap = Math.max(peakHeap, now.heapUsed)
        peakBuffers = Math.max(peakBuffers, now.arrayBuffers)
      }
      const writer = Effect.gen(function*() {
        for (let i = 0; i < count; i++) {
          const buffer = new Uint8Array(chunk) // fresh each time, as a producer reading from a file would
          buffer[0] = i & 255
          yield* a.output.write(buffer)
        }
        yield* a.output.close
      })
      const reader = Effect.gen(function*() {
        let received = 0
        let reads = 0
        while (true) {
          const got = yield* b.input.read(16 * 1024) // slower than the writer: small reads, yielding
          if (Option.isNone(got)) return received
          received += got.value.length
          if (++reads % 1024 === 0) {
            sample()
            yield* Effect.yieldNow()
          }
        }
      })
      const [, received] = yield* Effect.all([writer, reader], { concurrency: 2 })
      sample()
      expect(received).toBe(chunk * count)
      expect(samples).toBeGreaterThan(12)
      const MiB = 1024 * 1024
      // Without backpressure the 256 MiB piles up in the pipe (measured: +255 MiB of buffers).
      // With it, what stays is a few chunks plus buffers freed lazily after a collection (~16 MiB).
      expect((peakHeap - start.heapUsed) / MiB).toBeLessThan(16)
      expect((peakBuffers - start.arrayBuffers) / MiB).toBeLessThan(64)
    }))
})
