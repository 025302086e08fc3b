/**
 * Interruption as a property: connect, accept, the handshake, reads and writes are interrupted at
 * random moments, hundreds of times (a seeded PRNG picks the moments; a failing seed can be
 * replayed). Whatever was interrupted, nothing leaks: afterwards the process holds no more file
 * descriptors (/proc/self/fd) or TCP handles than before; nothing fails with a defect; and an
 * interrupted read loses no bytes, an interrupted write sends its chunk whole or not at all.
 */
import { Ssl, SslError } from "@effect-ssl/core"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { echo } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { prng } from "../../core/test/helpers/Random.js"
import { backTo, type Resources, resources, watchProcess } from "../../core/test/helpers/Resources.js"

let baseline: Resources
const watcher = watchProcess()

// One context each, made once: a context is compiled into OpenSSL's form on its first use only.
const contexts = Effect.runSync(
  Effect.cached(Effect.all([serverContext(), clientContext()]).pipe(Effect.provide(TestLayer)))
)
const localListener = Effect.flatMap(contexts, ([context]) => Ssl.listen(0, { hostname: "127.0.0.1", context }))
const connectTo = (port: number) => Effect.flatMap(contexts, ([, context]) => Ssl.connect("localhost", port, context))

beforeAll(async () => {
  // One full connection first, so that what node:tls keeps loaded is part of the baseline.
  await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const listener = yield* localListener
      const server = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), echo)))
      yield* Effect.scoped(connectTo(listener.address.port))
      yield* Fiber.await(server)
    })).pipe(Effect.provide(TestLayer))
  )
  baseline = await Effect.runPromise(
    Effect.flatMap(backTo({ fds: Infinity, tcpSockets: 0, tcpServers: 0 }), () => resources)
  )
})

afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/**
 * A random moment: a few scheduler turns, or a sleep of up to `maxMillis`, short ones more likely
 * (the randomness of the test, not a wait for anything).
 */
const randomMoment = (random: () => number, maxMillis = 4) =>
  random() < 0.4
    ? Effect.repeatN(Effect.yieldNow(), Math.floor(random() * 40))
    : Effect.sleep(Duration.millis(random() ** 2 * maxMillis))

/** An exit that is a success, an interruption, or (if `typedOk`) a typed SslError: never a defect. */
const expectClean = (exit: Exit.Exit<unknown, unknown>, what: string, typedOk: boolean) => {
  if (Exit.isSuccess(exit)) return "success"
  const cause = exit.cause
  expect(Cause.defects(cause).length, `${what}: ${Cause.pretty(cause)}`).toBe(0)
  if (Cause.isInterruptedOnly(cause)) return "interrupted"
  const failures = Array.from(Cause.failures(cause))
  expect(typedOk, `${what}: ${Cause.pretty(cause)}`).toBe(true)
  for (const failure of failures) expect(SslError.isSslError(failure), `${what}: ${Cause.pretty(cause)}`).toBe(true)
  return (failures[0] as SslError.SslError)._tag
}

const tally = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1
}

describe("connect, accept and the handshake, interrupted at random moments", () => {
  it.live("600 rounds (seed 0x1badcafe): no defect, no leak, the listeners keep serving", () =>
    Effect.gen(function*() {
      const random = prng(0x1badcafe)
      const outcomes: Record<string, number> = {}
      const serveFailures: Array<Cause.Cause<unknown>> = []
      yield* Effect.scoped(Effect.gen(function*() {
        // served: for connects interrupted on the client side
        const served = yield* localListener
        yield* Effect.forkScoped(Ssl.serve(served, echo, {
          onError: (cause) => Effect.sync(() => void serveFailures.push(cause))
        }))

        /** A client that connects, says hello, reads until the server ends. */
        const client = (port: number) =>
          Effect.scoped(Effect.gen(function*() {
            const conn = yield* connectTo(port)
            yield* conn.output.write("hello\n")
            yield* conn.input.readLine
          }))

        for (let round = 0; round < 600; round++) {
          const kind = Math.floor(random() * 4)
          if (kind === 0) {
            // connect (TCP connect, handshake, first exchange) interrupted on the client
            const fiber = yield* Effect.fork(client(served.address.port))
            yield* randomMoment(random, 20)
            tally(outcomes, `connect:${expectClean(yield* Fiber.interrupt(fiber), `round ${round}`, false)}`)
          } else if (kind === 1) {
            // accept interrupted while waiting or handshaking; the client then too, a moment later
            // (a listener of its own, so that no connection is left queued for a later round)
            yield* Effect.scoped(Effect.gen(function*() {
              const manual = yield* localListener
              const server = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(manual), echo)))
              const peer = yield* Effect.fork(client(manual.address.port))
              yield* randomMoment(random, 20)
              tally(outcomes, `accept:${expectClean(yield* Fiber.interrupt(server), `round ${round}`, true)}`)
              yield* randomMoment(random)
              expectClean(yield* Fiber.interrupt(peer), `round ${round} (its client)`, true)
            }))
          } else {
            // the handshake, on one side or the other, once the TCP connection is up on both
            const serverSide = kind === 2
            yield* Effect.scoped(Effect.gen(function*() {
              const manual = yield* localListener
              const connected = yield* Deferred.make<void>()
              const handshake = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
                const start = yield* manual.acceptTransport
                yield* Deferred.succeed(connected, undefined)
                const conn = yield* start
                yield* echo(conn)
              })))
              const peer = yield* Effect.fork(client(manual.address.port))
              yield* Deferred.await(connected)
              yield* randomMoment(random, 12)
              const interrupted = serverSide ? handshake : peer
              const other = serverSide ? peer : handshake
              const outcome = expectClean(yield* Fiber.interrupt(interrupted), `round ${round}`, true)
              tally(outcomes, `handshake(${serverSide ? "server" : "client"}):${outcome}`)
              // the other side sees its peer go and ends by itself (typed, or done)
              expectClean(yield* Fiber.await(other), `round ${round} (the other side)`, true)
            }))
          }
        }

        // the served listener still serves
        yield* client(served.address.port)
      }))
      // every failure serve saw (clients going away mid-handshake) was typed
      for (const cause of serveFailures) expectClean(Exit.failCause(cause), "serve", true)
      // interruptions really landed at different steps
      // the moments spread: some steps were cut short, some finished first
      for (const step of ["connect", "accept", "handshake(server)", "handshake(client)"]) {
        expect(outcomes[`${step}:interrupted`] ?? 0, JSON.stringify(outcomes)).toBeGreaterThan(20)
        expect(outcomes[`${step}:success`] ?? 0, JSON.stringify(outcomes)).toBeGreaterThan(0)
      }
      yield* backTo(baseline)
    }).pipe(Effect.provide(TestLayer)))
})

describe("reads and writes interrupted at random moments", () => {
  /** A connected pair in the current scope. */
  const connectedPair = Effect.gen(function*() {
    const listener = yield* localListener
    const accepted = yield* Effect.fork(Ssl.accept(listener))
    const client = yield* connectTo(listener.address.port)
    const server = yield* Fiber.join(accepted)
    return { client, server }
  })

  /** The i-th byte of the numbered stream: i mod 251 (a prime, so a lost or doubled run shows). */
  const numbered = (from: number, n: number) => {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = (from + i) % 251
    return out
  }

  it.live("hundreds of interrupted reads of every kind (seed 0xfeed): the bytes all arrive, in order, once", () =>
    Effect.gen(function*() {
      const random = prng(0xfeed)
      const total = 4 * 1024 * 1024
      const received = new Uint8Array(total)
      let at = 0
      const outcomes: Record<string, number> = {}
      yield* Effect.scoped(Effect.gen(function*() {
        const { client, server } = yield* connectedPair
        // the server sends the numbered stream in random-sized writes at random moments, so that
        // reads find bytes waiting, or none, or part of what they want
        const writer = yield* Effect.fork(Effect.gen(function*() {
          const sizes = prng(0xbeef)
          for (let offset = 0; offset < total;) {
            const n = Math.min(total - offset, 1 + Math.floor(sizes() * 16 * 1024))
            yield* server.output.write(numbered(offset, n))
            // (writes return once the bytes are queued: waiting for them to go paces the writer,
            // so that reads find bytes waiting, or none)
            yield* server.output.flush
            offset += n
            yield* randomMoment(sizes, 1)
          }
          yield* server.output.close
        }))
        const take = (bytes: Uint8Array) => {
          received.set(bytes, at)
          at += bytes.length
        }
        let rounds = 0
        for (; at < total; rounds++) {
          const kind = Math.floor(random() * 4)
          const size = 1 + Math.floor(random() * 16 * 1024)
          // a read that may wait for bytes that are yet to arrive, interrupted at a random moment
          const read: Effect.Effect<Option.Option<Uint8Array>, SslError.SslError> = kind === 0
            ? client.input.read()
            : kind === 1
            ? client.input.read(size)
            : kind === 2
            ? Effect.map(client.input.readExactly(Math.min(size, total - at)), Option.some)
            : Effect.map(client.input.readAll, (all) => (all.length === 0 ? Option.none() : Option.some(all)))
          const fiber = yield* Effect.fork(read)
          yield* randomMoment(random, 2)
          const exit = yield* Fiber.interrupt(fiber)
          tally(
            outcomes,
            `${["read", "read(max)", "readExactly", "readAll"][kind]}:${expectClean(exit, `round ${rounds}`, false)}`
          )
          if (Exit.isSuccess(exit) && Option.isSome(exit.value)) take(exit.value.value)
        }
        // everything arrived; then the end of input
        expect(yield* client.input.read()).toEqual(Option.none())
        yield* Fiber.join(writer)
        expect(rounds).toBeGreaterThan(500)
      }))
      expect(at).toBe(total)
      const expected = numbered(0, total)
      // compare, and point at the first difference if any
      let firstDifference = -1
      for (let i = 0; i < total; i++) {
        if (received[i] !== expected[i]) {
          firstDifference = i
          break
        }
      }
      expect(firstDifference).toBe(-1)
      // reads were cut short while waiting (and, for the gathering ones, holding part of what they
      // wanted), and others finished first; how often each happens depends on the machine's
      // timing, so the bounds only make sure every kind was exercised both ways
      for (const kind of ["read", "read(max)", "readExactly"]) {
        expect(outcomes[`${kind}:interrupted`] ?? 0, JSON.stringify(outcomes)).toBeGreaterThan(2)
        expect(outcomes[`${kind}:success`] ?? 0, JSON.stringify(outcomes)).toBeGreaterThan(5)
      }
      expect(outcomes["readAll:interrupted"] ?? 0, JSON.stringify(outcomes)).toBeGreaterThan(2)
      yield* backTo(baseline)
    }).pipe(Effect.provide(TestLayer)))

  it.live("120 interrupted writes (seed 0xc0de): each chunk arrives whole or not at all, in order", () =>
    Effect.gen(function*() {
      const random = prng(0xc0de)
      const completed: Array<number> = []
      const attempted = new Set<number>()
      const arrived: Array<number> = []
      const outcomes: Record<string, number> = {}
      yield* Effect.scoped(Effect.gen(function*() {
        const { client, server } = yield* connectedPair
        // the reader: chunks of [seq (4 bytes), length (4 bytes), length × (seq mod 256)]
        const reader = yield* Effect.fork(Effect.gen(function*() {
          while (true) {
            const header = yield* Effect.either(server.input.readExactly(8))
            if (header._tag === "Left") {
              // the end of input, between two chunks only
              expect(header.left).toMatchObject({ _tag: "IoError", reason: "UnexpectedEof" })
              return
            }
            const view = new DataView(header.right.buffer, header.right.byteOffset, 8)
            const seq = view.getUint32(0)
            const body = yield* server.input.readExactly(view.getUint32(4))
            expect(body.every((b) => b === (seq & 0xff)), `chunk ${seq} intact`).toBe(true)
            arrived.push(seq)
          }
        }))
        // (a write waits only once a MiB is queued: chunks up to 1.5 MiB make some of them wait)
        for (let seq = 0; seq < 120; seq++) {
          const length = 1 + Math.floor(random() * 1536 * 1024)
          const chunk = new Uint8Array(8 + length).fill(seq & 0xff)
          const view = new DataView(chunk.buffer)
          view.setUint32(0, seq)
          view.setUint32(4, length)
          attempted.add(seq)
          const fiber = yield* Effect.fork(client.output.write(chunk))
          yield* randomMoment(random, 2)
          const exit = yield* Fiber.interrupt(fiber)
          tally(outcomes, expectClean(exit, `write ${seq}`, false))
          if (Exit.isSuccess(exit)) completed.push(seq)
        }
        yield* client.output.close
        yield* Fiber.join(reader)
      }))
      // in order, each once, only what was written, and everything whose write returned
      for (let i = 1; i < arrived.length; i++) expect(arrived[i]!).toBeGreaterThan(arrived[i - 1]!)
      for (const seq of arrived) expect(attempted.has(seq)).toBe(true)
      const got = new Set(arrived)
      for (const seq of completed) expect(got.has(seq), `completed write ${seq} arrived`).toBe(true)
      expect(outcomes["interrupted"] ?? 0).toBeGreaterThan(0)
      expect(outcomes["success"] ?? 0).toBeGreaterThan(0)
      yield* backTo(baseline)
    }).pipe(Effect.provide(TestLayer)))
})
