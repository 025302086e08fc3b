import { Port, Ssl, SslError } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

const unavailable = Ssl.layerUnavailable("no tls here")

const expectUnavailable = (error: unknown) => {
  expect(error).toBeInstanceOf(SslError.SslUnavailableError)
  const e = error as SslError.SslUnavailableError
  expect(e._tag).toBe("SslUnavailableError")
  expect(e.reason).toBe("no tls here")
  expect(e.message).toContain("no tls here")
  expect(SslError.isSslError(e)).toBe(true)
}

describe("Ssl.layerUnavailable", () => {
  it.effect("reports TLS as unavailable, with the reason", () =>
    Effect.gen(function*() {
      expect(yield* Ssl.available).toBe(false)
      expect(yield* Ssl.loadFailReason).toEqual(Option.some("no tls here"))
    }).pipe(Effect.provide(unavailable)))

  it.scoped("connect fails with SslUnavailableError carrying the reason, for every kind of context argument", () =>
    Effect.gen(function*() {
      expectUnavailable(yield* Effect.flip(Ssl.connect("localhost", 443)))
      expectUnavailable(yield* Effect.flip(Ssl.connect("localhost", 443, "tls1.3")))
    }).pipe(Effect.provide(unavailable)))

  it.scoped("listen fails with SslUnavailableError carrying the reason", () =>
    Effect.gen(function*() {
      expectUnavailable(yield* Effect.flip(Ssl.listen(0)))
      expectUnavailable(yield* Effect.flip(Ssl.listen(0, { hostname: "127.0.0.1", backlog: 5, context: "auto" })))
    }).pipe(Effect.provide(unavailable)))

  it.scoped("wrap fails with SslUnavailableError carrying the reason, and leaves the duplex usable", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Port.pipe()
      expectUnavailable(yield* Effect.flip(Ssl.wrap(a, { mode: "connect", hostname: "localhost" })))
      expectUnavailable(yield* Effect.flip(Ssl.wrap(b, { mode: "accept", closeOriginal: true })))
      // nothing was closed or consumed: the plain duplex still works
      yield* a.output.write("plain")
      yield* a.output.close
      expect(new TextDecoder().decode(yield* b.input.readAll)).toBe("plain")
    }).pipe(Effect.provide(unavailable)))

  it.effect("the failure can be handled by tag", () =>
    Effect.gen(function*() {
      const fallback = yield* Effect.scoped(Ssl.connect("localhost", 443)).pipe(
        Effect.as("connected"),
        Effect.catchTag("SslUnavailableError", (e) => Effect.succeed(`plain text, because ${e.reason}`))
      )
      expect(fallback).toBe("plain text, because no tls here")
    }).pipe(Effect.provide(unavailable)))
})

describe("Ssl.isListener", () => {
  it("is false for things that are not listeners", () => {
    for (const other of [{}, null, undefined, "listener", { address: { hostname: "x", port: 1 } }]) {
      expect(Ssl.isListener(other)).toBe(false)
    }
  })

  it("is true for a value carrying the listener brand", () => {
    const listener = { [Ssl.ListenerTypeId]: Ssl.ListenerTypeId }
    expect(Ssl.isListener(listener)).toBe(true)
  })
})

describe("Ssl.HandshakeTimeout", () => {
  it.effect("defaults to 30 seconds", () =>
    Effect.gen(function*() {
      const timeout = yield* Ssl.HandshakeTimeout
      expect(Duration.toMillis(timeout)).toBe(30_000)
    }))

  it.effect("withHandshakeTimeout(effect, duration) sets it for the effect", () =>
    Effect.gen(function*() {
      const inside = yield* Ssl.withHandshakeTimeout(Ssl.HandshakeTimeout, "5 seconds")
      expect(Duration.toMillis(inside)).toBe(5_000)
      const millis = yield* Ssl.withHandshakeTimeout(Ssl.HandshakeTimeout, 1234)
      expect(Duration.toMillis(millis)).toBe(1234)
    }))

  it.effect("withHandshakeTimeout(duration) works in a pipe", () =>
    Effect.gen(function*() {
      const inside = yield* Ssl.HandshakeTimeout.pipe(Ssl.withHandshakeTimeout(Duration.millis(250)))
      expect(Duration.toMillis(inside)).toBe(250)
    }))

  it.effect("applies only inside: the value outside stays the default, and the innermost setting wins", () =>
    Effect.gen(function*() {
      const [outer, inner] = yield* Effect.all([
        Ssl.HandshakeTimeout,
        Ssl.withHandshakeTimeout(Ssl.HandshakeTimeout, "1 second")
      ]).pipe(Ssl.withHandshakeTimeout("10 seconds"))
      expect(Duration.toMillis(outer)).toBe(10_000)
      expect(Duration.toMillis(inner)).toBe(1_000)
      expect(Duration.toMillis(yield* Ssl.HandshakeTimeout)).toBe(30_000)
    }))

  it.effect("is visible to a service implementation running inside (as connect, listen and wrap read it)", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      const spy = Ssl.Ssl.of({
        available: true,
        loadFailReason: Option.none(),
        connect: () =>
          Effect.flatMap(Ssl.HandshakeTimeout, (d) => {
            seen.push(Duration.toMillis(d))
            return Effect.fail(new SslError.SslUnavailableError({ reason: "spy" }))
          }),
        listen: () => Effect.fail(new SslError.SslUnavailableError({ reason: "spy" })),
        wrap: () => Effect.fail(new SslError.SslUnavailableError({ reason: "spy" }))
      })
      yield* Effect.scoped(Ssl.connect("localhost", 1)).pipe(
        Effect.ignore,
        Ssl.withHandshakeTimeout("2 seconds"),
        Effect.provideService(Ssl.Ssl, spy)
      )
      yield* Effect.scoped(Ssl.connect("localhost", 1)).pipe(Effect.ignore, Effect.provideService(Ssl.Ssl, spy))
      expect(seen).toEqual([2_000, 30_000])
    }))
})
