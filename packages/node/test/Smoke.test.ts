import { Ssl } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"

describe("smoke", () => {
  it.live("NodeSsl.layer: TLS is available on Node, with no load failure to report", () =>
    Effect.gen(function*() {
      expect(yield* Ssl.available).toBe(true)
      expect(yield* Ssl.loadFailReason).toEqual(Option.none())
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("connect and accept talk both ways", () =>
    Effect.gen(function*() {
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext() })
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.accept(listener)
        const line = yield* conn.input.readLine
        yield* conn.output.write(`echo ${Option.getOrElse(line, () => "?")}\n`)
        yield* conn.output.close
        return yield* conn.session
      })))
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      yield* conn.output.write("hello\n")
      const reply = yield* conn.input.readLine
      expect(reply).toEqual(Option.some("echo hello"))
      const session = yield* conn.session
      expect(session.verified).toBe(true)
      expect(session.protocol).toBe("TLSv1.3")
      const eof = yield* conn.input.read()
      expect(Option.isNone(eof)).toBe(true)
      const serverSession = yield* Fiber.join(server)
      expect(serverSession.verified).toBe(false)
    }).pipe(Effect.provide(TestLayer)))
})
