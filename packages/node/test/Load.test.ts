/**
 * Load: many clients at once against one `Ssl.serve` echo listener, each sending 1 MiB of seeded
 * random bytes and reading it back, every byte checked by SHA-1 (@effect-ssl/sha1) on both ends;
 * no connection lost; memory back near where it started. This is the suite's size (50 clients);
 * `npx tsx bench/load.ts` runs the full one (1,000 clients) and prints its figures.
 */
import { Ssl } from "@effect-ssl/core"
import { Sha1 } from "@effect-ssl/sha1"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { backTo, resources, watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/** `gc()`, which vitest's workers do not expose by default. */
const collectGarbage = (): () => void => {
  v8.setFlagsFromString("--expose-gc")
  return vm.runInNewContext("gc") as () => void
}

const MiB = 1024 * 1024
const CHUNK = 64 * 1024

/**
 * `length` bytes from a seeded xorshift32 generator, as a stream of 64 KiB chunks made as they are
 * pulled: a client's data is never all in memory at once, and the same seed gives the same bytes.
 */
const seededStream = (seed: number, length: number): Stream.Stream<Uint8Array> =>
  Stream.suspend(() => {
    let x = seed >>> 0 || 1
    let left = length
    return Stream.repeatEffectOption(Effect.suspend(() => {
      if (left === 0) return Effect.fail(Option.none())
      const n = Math.min(CHUNK, left)
      const words = new Uint32Array(Math.ceil(n / 4))
      for (let i = 0; i < words.length; i++) {
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        words[i] = x >>> 0
      }
      left -= n
      return Effect.succeed(new Uint8Array(words.buffer, 0, n))
    }))
  })

/** What the server's handler found for one connection. */
interface ServerCheck {
  readonly ok: boolean
  readonly bytes: number
}

/**
 * The echo handler: reads a header line "<sha1 hex> <length>", then echoes every byte until the
 * end of input while hashing it, and checks the digest and the length against the header.
 */
const verifyingEcho = (checks: Array<ServerCheck>) => (conn: Ssl.Connection) =>
  Effect.gen(function*() {
    const header = Option.getOrElse(yield* conn.input.readLine, () => "")
    const [expected, length] = header.split(" ")
    let bytes = 0
    const digest = yield* Sha1.sha1(conn.input.stream.pipe(
      Stream.tap((chunk) => {
        bytes += chunk.length
        return conn.output.write(chunk)
      })
    ))
    // recorded before the close_notify: once the client has seen it, the server's check is in
    checks.push({ ok: digest === expected && bytes === Number(length), bytes })
    yield* conn.output.close
  })

/**
 * A client: sends the header and `length` seeded bytes while reading the echo back; returns
 * whether the SHA-1 and length of what came back match what it sent.
 */
const loadClient = (port: number, seed: number, length: number) =>
  Effect.scoped(Effect.gen(function*() {
    const expected = yield* Sha1.sha1(seededStream(seed, length))
    const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
    const send = Effect.gen(function*() {
      yield* conn.output.write(`${expected} ${length}\n`)
      yield* Stream.run(seededStream(seed, length), conn.output.sink)
      yield* conn.output.close
    })
    let received = 0
    const receive = Sha1.sha1(
      conn.input.stream.pipe(Stream.tap((chunk) => Effect.sync(() => void (received += chunk.length))))
    )
    const [, digest] = yield* Effect.all([send, receive], { concurrency: 2 })
    return { ok: digest === expected && received === length, received }
  }))

describe("load", () => {
  it.live("50 clients at once, 1 MiB each way each, SHA-1 checked on both ends; memory comes back", () =>
    Effect.gen(function*() {
      const clients = 50
      const gc = collectGarbage()
      const before = yield* resources
      gc()
      const start = process.memoryUsage()
      let peakRss = start.rss
      const checks: Array<ServerCheck> = []
      const failures: Array<Cause.Cause<unknown>> = []
      const started = Date.now()
      const results = yield* Effect.scoped(Effect.gen(function*() {
        const sampler = yield* Effect.fork(Effect.repeat(
          Effect.sync(() => void (peakRss = Math.max(peakRss, process.memoryUsage.rss()))),
          Schedule.spaced("20 millis")
        ))
        const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext(), backlog: 1024 })
        yield* Effect.forkScoped(Ssl.serve(listener, verifyingEcho(checks), {
          onError: (cause) => Effect.sync(() => void failures.push(cause))
        }))
        const results = yield* Effect.forEach(
          Array.from({ length: clients }, (_, i) => i),
          (i) => loadClient(listener.address.port, 0x10ad + i, MiB),
          { concurrency: "unbounded" }
        )
        yield* Fiber.interrupt(sampler)
        return results
      }))
      const seconds = (Date.now() - started) / 1000
      yield* backTo(before)
      gc()
      const after = process.memoryUsage()

      // no connection lost, every byte verified on both ends
      expect(failures.map((cause) => Cause.pretty(cause))).toEqual([])
      expect(results.filter((r) => r.ok).length).toBe(clients)
      expect(results.every((r) => r.received === MiB)).toBe(true)
      expect(checks.length).toBe(clients)
      expect(checks.every((c) => c.ok && c.bytes === MiB)).toBe(true)

      // memory: what is kept once every connection is gone is small (the per-connection buffers
      // and the clients' data are not retained)
      const grew = {
        heapUsed: (after.heapUsed - start.heapUsed) / MiB,
        arrayBuffers: (after.arrayBuffers - start.arrayBuffers) / MiB,
        rss: (after.rss - start.rss) / MiB,
        peakRss: (peakRss - start.rss) / MiB
      }
      expect(grew.heapUsed, JSON.stringify(grew)).toBeLessThan(16)
      expect(grew.arrayBuffers, JSON.stringify(grew)).toBeLessThan(16)
      // nor did the peak run away (RSS is the whole worker's, shared with other test files, so
      // only a generous bound is robust; the heap and buffer bounds above are the tight ones)
      expect(grew.peakRss, JSON.stringify(grew)).toBeLessThan(1024)
      if (process.env["EFFECT_SSL_PRINT_LOAD"] !== undefined) {
        process.stdout.write(`${JSON.stringify({ clients, bytesEachWay: clients * MiB, seconds, grew })}\n`)
      }
    }).pipe(Effect.provide(TestLayer)))
})
