/**
 * Ssl.serve: each accepted connection handled in its own fiber and scope. A client that never
 * handshakes holds up no one, a failing handler or handshake ends its own connection only, the
 * concurrency bounds the handlers running at once, and serve's end (interrupted, or its listener
 * closed) ends the connections it had open. What idle connections can take from a listener:
 * ServeAdmission.test.ts; many clients at once: Load.test.ts.
 */
import { Ssl, type SslError } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { drain, localListener } from "../../core/test/helpers/Connections.js"
import { clientContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { rawClient } from "../../core/test/helpers/RawPeers.js"
import { eventually, leakCheck } from "../../core/test/helpers/Resources.js"

const connectTo = (listener: Ssl.Listener) =>
  Effect.flatMap(clientContext(), (context) => Ssl.connect("localhost", listener.address.port, context))

// What node:tls and the fixtures keep open once loaded is part of the baseline.
const leaks = leakCheck({ warm: true })

describe("Ssl.serve", () => {
  /** Echoes lines until the client ends; a line "fail" makes the handler fail. */
  const echo = (conn: Ssl.Connection): Effect.Effect<void, string | SslError.SslError> =>
    Effect.gen(function*() {
      while (true) {
        const line = yield* conn.input.readLine
        if (Option.isNone(line)) return
        if (line.value === "fail") return yield* Effect.fail("handler failed")
        yield* conn.output.write(`echo ${line.value}\n`)
      }
    })

  const ask = (conn: Ssl.Connection, line: string) =>
    Effect.zipRight(conn.output.write(`${line}\n`), conn.input.readLine)

  it.scopedLive("a client that never handshakes does not hold up the others; interrupting serve closes it", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const serving = yield* Effect.fork(Ssl.serve(listener, echo))
      const silent = yield* rawClient(listener.address.port)
      const first = yield* connectTo(listener)
      const second = yield* connectTo(listener)
      expect(yield* ask(second, "two")).toEqual(Option.some("echo two"))
      expect(yield* ask(first, "one")).toEqual(Option.some("echo one"))
      yield* Fiber.interrupt(serving)
      // Every connection serve had open ends: the silent one mid-handshake, the others cleanly.
      yield* silent.closed
      expect(yield* drain(first.input)).toEqual({ data: "", end: "eof" })
      expect(yield* drain(second.input)).toEqual({ data: "", end: "eof" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a failing handler ends its own connection only", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      yield* Effect.forkScoped(Ssl.serve(listener, echo))
      const bystander = yield* connectTo(listener)
      expect(yield* ask(bystander, "before")).toEqual(Option.some("echo before"))
      const failing = yield* connectTo(listener)
      yield* failing.output.write("fail\n")
      // The failed handler's scope closed its connection with close_notify.
      expect(yield* drain(failing.input)).toEqual({ data: "", end: "eof" })
      expect(yield* ask(bystander, "after")).toEqual(Option.some("echo after"))
      const newcomer = yield* connectTo(listener)
      expect(yield* ask(newcomer, "new")).toEqual(Option.some("echo new"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a failing handshake ends its own connection only", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      yield* Effect.forkScoped(Ssl.serve(listener, echo))
      // A client that does not trust the server aborts the handshake.
      const untrusting = yield* Effect.flip(Effect.scoped(Ssl.connect("localhost", listener.address.port)))
      expect(untrusting).toMatchObject({ _tag: "VerifyError" })
      const client = yield* connectTo(listener)
      expect(yield* ask(client, "still serving")).toEqual(Option.some("echo still serving"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("concurrency bounds how many handlers run at once", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const gate = yield* Deferred.make<void>()
      let active = 0
      let most = 0
      const held = (conn: Ssl.Connection) =>
        Effect.gen(function*() {
          active++
          most = Math.max(most, active)
          yield* Deferred.await(gate)
          yield* conn.output.write("done\n")
          yield* conn.output.close
        }).pipe(Effect.ensuring(Effect.sync(() => active--)))
      yield* Effect.forkScoped(Ssl.serve(listener, held, { concurrency: 2 }))
      const client = (n: number) =>
        Effect.fork(
          Effect.scoped(Effect.flatMap(connectTo(listener), (conn) => conn.input.readLine)).pipe(
            Effect.map((line) => `${n}: ${Option.getOrElse(line, () => "none")}`)
          )
        )
      const first = yield* client(1)
      const second = yield* client(2)
      yield* eventually("two handlers running", Effect.sync(() => active), (n) => n === 2)
      const third = yield* client(3)
      // The third client connects at the TCP level but is not taken while two handlers run:
      // no third handler starts within a time in which a loopback handshake easily completes.
      const extra = yield* Effect.either(
        eventually("a third handler", Effect.sync(() => active), (n) => n > 2, "400 millis")
      )
      expect(Either.isLeft(extra)).toBe(true)
      expect(most).toBe(2)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(Fiber.zip(Fiber.zip(first, second), third))).toEqual([["1: done", "2: done"], "3: done"])
      expect(most).toBe(2)
    }).pipe(Effect.provide(TestLayer)))
  it.scopedLive("a concurrency that is not a positive integer is refused before serving", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      for (const concurrency of [0, -1, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(Ssl.serve(listener, echo, { concurrency }))
        expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "concurrency" })
      }
      // Infinity is the default spelled out.
      yield* Effect.forkScoped(Ssl.serve(listener, echo, { concurrency: Infinity }))
      const conn = yield* connectTo(listener)
      yield* conn.output.write("unbounded\n")
      expect(yield* conn.input.readLine).toEqual(Option.some("echo unbounded"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("serve on a closed listener ends with ListenError Closed", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const serving = yield* Effect.fork(Ssl.serve(listener, echo))
      const client = yield* connectTo(listener)
      expect(yield* ask(client, "open")).toEqual(Option.some("echo open"))
      yield* Ssl.close(listener)
      const error = yield* Effect.flip(Fiber.join(serving))
      expect(error).toMatchObject({ _tag: "ListenError", reason: "Closed" })
      // serve's end closed the connections it had open.
      expect(yield* drain(client.input)).toEqual({ data: "", end: "eof" })
    }).pipe(Effect.provide(TestLayer)))
})

describe("leaks", () => {
  it.live("every socket and file descriptor of this file is released", () => leaks.released)
})
