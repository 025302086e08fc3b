/**
 * Interruption: connect, accept (with or without an ALPN list to read the ClientHello for), wrap
 * and reads that are interrupted or time out (on the live clock and on the TestClock) return
 * promptly, leak nothing and lose no bytes. The same at random moments, hundreds of times:
 * InterruptionProperty.test.ts.
 */
import type { SslError } from "@effect-ssl/core"
import { Port, Ssl, SslContext } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as Crypto from "node:crypto"
import { localListener } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { rawClient, rawPeer, silentServer } from "../../core/test/helpers/RawPeers.js"
import { backTo, eventually, leakCheck, resources, suspended } from "../../core/test/helpers/Resources.js"
import { handshake, timeoutError } from "../src/internal/handshake.js"

const decoder = new TextDecoder()
const text = (bytes: Uint8Array) => decoder.decode(bytes)

const connectTo = (port: number) =>
  Effect.flatMap(clientContext(), (context) => Ssl.connect("localhost", port, context))

/** A connected pair over loopback: the client's connection and the server's, in the current scope. */
const connectedPair = Effect.gen(function*() {
  const listener = yield* localListener
  const accepted = yield* Effect.fork(Ssl.accept(listener))
  const client = yield* connectTo(listener.address.port)
  const server = yield* Fiber.join(accepted)
  return { client, server, listener }
})

/** Runs `effect` and returns how long it took, in milliseconds. */
const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = Date.now()
    const result = yield* effect
    return [result, Date.now() - start] as const
  })

const leaks = leakCheck()

describe("connect", () => {
  it.scopedLive("interrupted during the handshake, it returns promptly and leaks no socket", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const before = yield* resources
      const connecting = yield* Effect.fork(Effect.scoped(connectTo(silent.port)))
      // The TCP connection is up and the ClientHello is out: stuck in the handshake.
      yield* eventually("silent server connected", Effect.sync(silent.connections), (n) => n === 1)
      yield* suspended(connecting)
      const [, elapsed] = yield* timed(Fiber.interrupt(connecting))
      expect(elapsed).toBeLessThan(1000)
      // Our socket is gone, and the peer saw it go.
      yield* eventually("silent server's socket closed", Effect.sync(() => silent.sockets.size), (n) => n === 0)
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("Effect.timeout around connect bounds it (the replacement for ssl-connect/enable-break)", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const before = yield* resources
      const [result, elapsed] = yield* timed(Effect.either(
        Effect.scoped(connectTo(silent.port)).pipe(
          Effect.timeout("200 millis")
        )
      ))
      expect(result).toMatchObject({ _tag: "Left", left: { _tag: "TimeoutException" } })
      expect(elapsed).toBeGreaterThanOrEqual(190)
      expect(elapsed).toBeLessThan(2000)
      yield* eventually("silent server's socket closed", Effect.sync(() => silent.sockets.size), (n) => n === 0)
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("Ssl.withHandshakeTimeout makes a silent server a HandshakeError \"Timeout\"", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const before = yield* resources
      const [error, elapsed] = yield* timed(Effect.flip(
        Effect.scoped(connectTo(silent.port)).pipe(Ssl.withHandshakeTimeout("200 millis"))
      ))
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "Timeout", side: "client" })
      expect(error.message).toMatch(/in time/)
      expect(elapsed).toBeGreaterThanOrEqual(190)
      expect(elapsed).toBeLessThan(2000)
      yield* eventually("silent server's socket closed", Effect.sync(() => silent.sockets.size), (n) => n === 0)
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  it.live("the handshake timeout is 30 seconds unless set", () =>
    Effect.gen(function*() {
      expect(Duration.toMillis(yield* Ssl.HandshakeTimeout)).toBe(30_000)
      const set = yield* Ssl.withHandshakeTimeout(Ssl.HandshakeTimeout, "200 millis")
      expect(Duration.toMillis(set)).toBe(200)
      const setDataFirst = yield* Ssl.HandshakeTimeout.pipe(Ssl.withHandshakeTimeout(Duration.seconds(2)))
      expect(Duration.toMillis(setDataFirst)).toBe(2000)
    }))
})

describe("accept", () => {
  it.scopedLive("interrupted while waiting, it returns promptly; the listener accepts later", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const waiting = yield* Effect.fork(Effect.scoped(Ssl.accept(listener)))
      yield* suspended(waiting)
      const [, elapsed] = yield* timed(Fiber.interrupt(waiting))
      expect(elapsed).toBeLessThan(1000)
      // Nothing was lost: the next accept takes the next client.
      const accepted = yield* Effect.fork(Ssl.accept(listener))
      const client = yield* connectTo(listener.address.port)
      const server = yield* Fiber.join(accepted)
      yield* client.output.write("after the interrupted accept\n")
      expect(yield* server.input.readLine).toEqual(Option.some("after the interrupted accept"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a listener made under withHandshakeTimeout gives up on a silent client; the next one is served", () =>
    Effect.gen(function*() {
      const listener = yield* localListener.pipe(Ssl.withHandshakeTimeout("200 millis"))
      const silent = yield* rawClient(listener.address.port)
      const [error, elapsed] = yield* timed(Effect.flip(Effect.scoped(Ssl.accept(listener))))
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "Timeout", side: "server" })
      expect(elapsed).toBeLessThan(2000)
      yield* silent.closed // its socket was destroyed with the failed accept's scope
      const accepted = yield* Effect.fork(Ssl.accept(listener))
      const client = yield* connectTo(listener.address.port)
      const server = yield* Fiber.join(accepted)
      yield* server.output.write("served\n")
      expect(yield* client.input.readLine).toEqual(Option.some("served"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("an accept of a server with ALPN, waiting for a ClientHello, is interruptible and releases the socket", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setAlpn(server, ["h2"])
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const baseline = yield* resources
      // Half a ClientHello record header, then silence.
      const peer = yield* Effect.fork(rawPeer(listener.address.port, new Uint8Array([22, 3]), "silent"))
      // The TCP connection is taken first, so that the suspended handshake is the offer's read.
      const handshake = yield* listener.acceptTransport
      const accepting = yield* Effect.fork(Effect.scoped(handshake))
      yield* suspended(accepting)
      yield* Fiber.interrupt(accepting)
      // The peer's socket is closed by the server, and nothing is left open.
      expect(yield* Fiber.join(peer)).toBe(0)
      yield* backTo(baseline)
    }).pipe(Effect.provide(TestLayer)))
})

describe("the handshake timeout on the TestClock", () => {
  // `it.scoped` runs on the TestClock: the timeout fires when the test moves the clock, never on
  // its own. Real sockets are fine as long as nothing waits on the clock (these waits poll in real
  // time instead), and an hour-long timeout cannot pass for real while the test runs.
  const timeout = Duration.hours(1)

  /** Polls `check` in real time (the TestClock's sleeps would never end) for at most 10 s. */
  const realUntil = (what: string, check: Effect.Effect<boolean>) =>
    Effect.gen(function*() {
      const deadline = Date.now() + 10_000
      while (!(yield* check)) {
        if (Date.now() > deadline) return yield* Effect.dieMessage(`${what}: not within 10 s`)
        yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 5)))
      }
    })

  /** The handshake's timer is registered with the TestClock. */
  const timerSet = realUntil(
    "the handshake's timer",
    Effect.map(TestClock.sleeps(), (sleeps) => Chunk.size(sleeps) > 0)
  )

  /** Moves the clock to just before the timeout (still pending), then past it; the fiber's failure. */
  const pastTheTimeout = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
    Effect.gen(function*() {
      yield* TestClock.adjust(Duration.subtract(timeout, Duration.seconds(1)))
      expect(yield* fiber.poll).toEqual(Option.none())
      yield* TestClock.adjust(Duration.seconds(2))
      // (Bounded in real time: a timer that ignored the TestClock would leave it pending.)
      return yield* Effect.raceFirst(
        Effect.flip(Fiber.join(fiber)),
        Effect.async<never>((resume) => {
          const timer = setTimeout(
            () => resume(Effect.dieMessage("still pending 10 s after the clock moved past the timeout")),
            10_000
          )
          return Effect.sync(() => clearTimeout(timer))
        })
      )
    })

  it.scoped("connect to a silent server: HandshakeError Timeout once the clock is moved past it", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const connecting = yield* Effect.fork(
        Effect.scoped(connectTo(silent.port)).pipe(Ssl.withHandshakeTimeout(timeout))
      )
      yield* realUntil("the silent server's connection", Effect.sync(() => silent.connections() === 1))
      yield* timerSet
      const error = yield* pastTheTimeout(connecting)
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "Timeout", side: "client" })
      yield* realUntil("the client's socket closed", Effect.sync(() => silent.sockets.size === 0))
    }).pipe(Effect.provide(TestLayer)))

  it.scoped("accept of a silent client: HandshakeError Timeout once the clock is moved past it", () =>
    Effect.gen(function*() {
      const listener = yield* localListener.pipe(Ssl.withHandshakeTimeout(timeout))
      const accepting = yield* Effect.fork(Effect.scoped(Ssl.accept(listener)))
      const silent = yield* rawClient(listener.address.port)
      yield* timerSet
      const error = yield* pastTheTimeout(accepting)
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "Timeout", side: "server" })
      yield* silent.closed
    }).pipe(Effect.provide(TestLayer)))

  it.scoped("wrap over a pipe nobody answers: HandshakeError Timeout once the clock is moved past it", () =>
    Effect.gen(function*() {
      const [a] = yield* Port.pipe()
      const wrapping = yield* Effect.fork(
        Effect.scoped(
          Effect.flatMap(clientContext(), (context) => Ssl.wrap(a, { mode: "connect", hostname: "localhost", context }))
        ).pipe(Ssl.withHandshakeTimeout(timeout))
      )
      yield* timerSet
      const error = yield* pastTheTimeout(wrapping)
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "Timeout", side: "client" })
    }).pipe(Effect.provide(TestLayer)))
})

describe("interrupted reads lose no bytes", () => {
  it.scopedLive("a pending read", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connectedPair
      const reading = yield* Effect.fork(client.input.read())
      yield* suspended(reading)
      const [, elapsed] = yield* timed(Fiber.interrupt(reading))
      expect(elapsed).toBeLessThan(1000)
      yield* server.output.write("sent after the interrupt")
      expect(text(yield* client.input.readExactly(24))).toBe("sent after the interrupt")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("readExactly, interrupted after taking part of what it wants", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connectedPair
      // "abcd" arrives with the prefix, so it is buffered when readExactly starts.
      yield* server.output.write("PINGabcd")
      expect(text(yield* client.input.readExactly(4))).toBe("PING")
      const reading = yield* Effect.fork(client.input.readExactly(10))
      yield* suspended(reading)
      yield* Fiber.interrupt(reading)
      yield* server.output.write("efghijklmn")
      expect(text(yield* client.input.readExactly(14))).toBe("abcdefghijklmn")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("readLine, interrupted in the middle of a line", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connectedPair
      yield* server.output.write("PINGhello ")
      expect(text(yield* client.input.readExactly(4))).toBe("PING")
      const reading = yield* Effect.fork(client.input.readLine)
      yield* suspended(reading)
      yield* Fiber.interrupt(reading)
      yield* server.output.write("world\r\nnext\n")
      expect(yield* client.input.readLine).toEqual(Option.some("hello world"))
      expect(yield* client.input.readLine).toEqual(Option.some("next"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("many interrupted reads in a row, while data streams in", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connectedPair
      const total = 256 * 1024
      const sent = new Uint8Array(Crypto.randomBytes(total))
      const writer = yield* Effect.fork(Effect.gen(function*() {
        for (let offset = 0; offset < total; offset += 4096) {
          yield* server.output.write(sent.subarray(offset, offset + 4096))
        }
        yield* server.output.close
      }))
      const hash = Crypto.createHash("sha256")
      let received = 0
      let round = 0
      while (true) {
        // Every other read is cut short; whatever it would have taken must come with the next.
        if (round++ % 2 === 0) {
          const reading = yield* Effect.fork(client.input.readExactly(3000))
          yield* Effect.yieldNow()
          const exit = yield* Fiber.interrupt(reading)
          // It may have finished first (its bytes are then ours), or met the end of input
          // (it then put back what it had taken).
          if (Exit.isSuccess(exit)) {
            hash.update(exit.value)
            received += exit.value.length
          }
          continue
        }
        const chunk = yield* client.input.read()
        if (Option.isNone(chunk)) break
        hash.update(chunk.value)
        received += chunk.value.length
      }
      yield* Fiber.join(writer)
      expect(received).toBe(total)
      expect(hash.digest("hex")).toBe(Crypto.createHash("sha256").update(sent).digest("hex"))
    }).pipe(Effect.provide(TestLayer)))
})

describe("the handshake wait, at the moments a real peer cannot be made to hit", () => {
  // `handshake` (internal) with a stand-in for node:tls: `start` hands back how to stop it, and
  // the test decides when `finish` is called and when the interrupt comes, to the turn.
  const probe = () => {
    const counts = { cancelled: 0, timedOut: 0, done: 0 }
    let finish: ((outcome: Effect.Effect<string, SslError.SslError>) => void) | undefined
    const start = (
      onStart: () => void = () => {}
    ) =>
    (given: (outcome: Effect.Effect<string, SslError.SslError>) => void) => {
      finish = given
      onStart()
      return {
        cancel: () => void counts.cancelled++,
        timedOut: () => {
          counts.timedOut++
          given(Effect.fail(timeoutError("client", undefined, Duration.millis(30))))
        }
      }
    }
    const done = (value: string) => Effect.sync(() => (counts.done++, value))
    return { counts, start, done, finish: (value: string) => finish!(Effect.succeed(value)) }
  }
  /** Real milliseconds, whatever the fiber's Clock. */
  const realSleep = (millis: number) => Effect.promise(() => new Promise<void>((r) => setTimeout(r, millis)))
  /** `suspended`, polling in real time (the TestClock's sleeps never end by themselves). */
  const parked = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
    Effect.gen(function*() {
      while ((yield* Fiber.status(fiber))._tag !== "Suspended") yield* realSleep(1)
    })

  it.live("interrupted after the outcome came but before the fiber took it: the outcome is torn down, not lost", () =>
    Effect.gen(function*() {
      const { counts, done, finish, start } = probe()
      const waiting = yield* Effect.fork(handshake(Duration.millis(30), start(), done))
      yield* parked(waiting)
      // Both in one turn: the fiber has the outcome and the interrupt queued, in that order.
      finish("connection")
      waiting.unsafeInterruptAsFork(FiberId.none)
      const exit = yield* Fiber.await(waiting)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(counts).toEqual({ cancelled: 1, timedOut: 0, done: 0 })
      // and its timer went with it
      yield* realSleep(60)
      expect(counts.timedOut).toBe(0)
    }))

  it.live("interrupted while start runs: what it began is torn down and its timer stopped", () =>
    Effect.gen(function*() {
      const { counts, done, start } = probe()
      // (its own fiber: the interrupt is sent to the fiber that runs `start`)
      const exit = yield* Fiber.await(
        yield* Effect.fork(
          Effect.withFiberRuntime<string, SslError.SslError>((fiber) =>
            handshake(Duration.millis(30), start(() => fiber.unsafeInterruptAsFork(FiberId.none)), done)
          )
        )
      )
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(counts.cancelled).toBe(1)
      yield* realSleep(60)
      expect(counts).toEqual({ cancelled: 1, timedOut: 0, done: 0 })
    }))

  it.live("interrupted while waiting: torn down once, and the timeout never fires afterwards", () =>
    Effect.gen(function*() {
      const { counts, done, finish, start } = probe()
      const waiting = yield* Effect.fork(handshake(Duration.millis(30), start(), done))
      yield* parked(waiting)
      yield* Fiber.interrupt(waiting)
      yield* realSleep(60)
      // (an outcome after the interrupt goes nowhere)
      finish("late")
      expect(counts).toEqual({ cancelled: 1, timedOut: 0, done: 0 })
    }))

  it.live("finished before the timeout: done runs, and the timer neither fires nor tears it down later", () =>
    Effect.gen(function*() {
      const { counts, done, finish, start } = probe()
      const waiting = yield* Effect.fork(handshake(Duration.millis(30), start(), done))
      yield* parked(waiting)
      finish("connection")
      expect(yield* Fiber.join(waiting)).toBe("connection")
      yield* realSleep(60)
      expect(counts).toEqual({ cancelled: 0, timedOut: 0, done: 1 })
    }))

  it.effect("on the TestClock the same wait times out when the clock moves, through the handshake's timedOut", () =>
    Effect.gen(function*() {
      const { counts, done, start } = probe()
      const waiting = yield* Effect.fork(handshake(Duration.millis(30), start(), done))
      yield* parked(waiting)
      // Real time passes and nothing happens: the timer is on the TestClock.
      yield* realSleep(60)
      expect(counts.timedOut).toBe(0)
      yield* TestClock.adjust(Duration.millis(31))
      const error = yield* Effect.flip(Fiber.join(waiting))
      expect(error).toMatchObject({ _tag: "HandshakeError", reason: "Timeout" })
      expect(counts).toEqual({ cancelled: 0, timedOut: 1, done: 0 })
    }))

  it.effect("on the TestClock a wait that finished is not timed out when the clock moves past it", () =>
    Effect.gen(function*() {
      const { counts, done, finish, start } = probe()
      // The fiber goes on after its handshake, as a connection's does (a fiber's end would
      // interrupt what it forked anyway).
      const waiting = yield* Effect.fork(Effect.zipLeft(handshake(Duration.millis(30), start(), done), Effect.never))
      yield* parked(waiting)
      finish("connection")
      while (counts.done === 0) yield* realSleep(1)
      yield* TestClock.adjust(Duration.millis(31))
      yield* realSleep(10)
      expect(counts).toEqual({ cancelled: 0, timedOut: 0, done: 1 })
      yield* Fiber.interrupt(waiting)
    }))

  it.effect("on the TestClock a zero timeout fires whenever the fiber yields, even before the wait has begun", () =>
    Effect.gen(function*() {
      // A fiber yields to the scheduler after so many steps: `busy(n)` before the handshake
      // moves that yield to every step of it in turn, among them the one between forking the
      // sleeper and starting the wait, where the sleeper (on a zero timeout) wakes first.
      const busy = (n: number): Effect.Effect<void> =>
        n === 0 ? Effect.void : Effect.flatMap(Effect.void, () => busy(n - 1))
      const steps = Array.from({ length: 2100 }, (_, n) => n)
      const waits = yield* Effect.forEach(steps, (n) => {
        const { counts, done, start } = probe()
        return Effect.map(
          Effect.fork(Effect.zipRight(busy(n), handshake(Duration.zero, start(), done))),
          (fiber) => ({ n, counts, fiber })
        )
      })
      // (each times out within a turn or two of the scheduler: a loaded machine gets a second)
      const pending = () => waits.filter((wait) => wait.counts.timedOut === 0).map((wait) => wait.n)
      for (let i = 0; i < 100 && pending().length > 0; i++) yield* realSleep(10)
      const lost = pending()
      yield* Fiber.interruptAll(waits.map((wait) => wait.fiber))
      expect(lost).toEqual([])
    }))
})

describe("leaks", () => {
  it.live("every socket and file descriptor of this file is released", () => leaks.released)
})
