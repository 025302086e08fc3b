/**
 * Ephemeral Diffie-Hellman (DHE) cipher suites work with no setup, as OpenSSL's own servers
 * provide them (Racket's test-ephemeral): a TLS 1.2 client that offers only a DHE suite completes
 * its handshake with an RSA server, and both sessions name the suite.
 */
import { Ssl, SslContext } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { spawnOpenssl } from "../../core/test/helpers/Openssl.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

const suite = "DHE-RSA-AES128-GCM-SHA256"

/** A listener with the RSA fixture chain, set up as every other (nothing about DHE). */
const listener = Effect.flatMap(serverContext(), (context) => Ssl.listen(0, { hostname: "127.0.0.1", context }))

/** Accepts one connection and answers one line; the server's session. */
const answerOnce = (listening: Ssl.Listener) =>
  Effect.fork(Effect.scoped(Effect.gen(function*() {
    const conn = yield* Ssl.accept(listening)
    const line = yield* conn.input.readLine
    yield* conn.output.write(`got ${Option.getOrElse(line, () => "nothing")}\n`)
    return yield* conn.session
  })))

describe(`a TLS 1.2 client that offers only ${suite}`, () => {
  it.scopedLive("openssl s_client: the handshake completes with a DH key exchange", () =>
    Effect.gen(function*() {
      const listening = yield* listener
      const server = yield* answerOnce(listening)
      const client = yield* spawnOpenssl([
        "s_client",
        "-tls1_2",
        "-cipher",
        suite,
        "-connect",
        `127.0.0.1:${listening.address.port}`,
        "-servername",
        "localhost",
        "-CAfile",
        "root-ca.pem",
        "-verify_return_error"
      ])
      yield* client.waitFor(new RegExp(`Cipher is ${suite}`))
      yield* client.write("ping\n")
      yield* client.waitFor(/^got ping$/m)
      // The key exchange was finite-field Diffie-Hellman, at a size OpenSSL's level 2 accepts.
      const [, bits] = yield* client.waitFor(/Server Temp Key: DH, (\d+) bits/)
      expect(Number(bits)).toBeGreaterThanOrEqual(2048)
      const session = yield* Fiber.join(server)
      expect(session).toMatchObject({ protocol: "TLSv1.2", cipher: suite })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("effect-ssl's own client (SslContext.setCiphers): both sessions say DHE", () =>
    Effect.gen(function*() {
      const listening = yield* listener
      const server = yield* answerOnce(listening)
      const context = yield* clientContext("tls1.2")
      yield* SslContext.setCiphers(context, suite)
      const conn = yield* Ssl.connect("localhost", listening.address.port, context)
      yield* conn.output.write("ping\n")
      expect(yield* conn.input.readLine).toEqual(Option.some("got ping"))
      expect(yield* conn.session).toMatchObject({ protocol: "TLSv1.2", cipher: suite, verified: true })
      expect(yield* Fiber.join(server)).toMatchObject({ protocol: "TLSv1.2", cipher: suite })
    }).pipe(Effect.provide(TestLayer)))
})
