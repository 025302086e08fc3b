/**
 * The effect-ssl half of children/server.ts (loaded only there, so the raw server starts without
 * Effect).
 */
import { Ssl } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import { type CertKind, LISTEN_HOST } from "../lib/common.js"
import { drain, makeRuntime, readCount, serverContext, writeCount } from "../lib/effect.js"
import { byte, D, H, K, S, type ServerPorts } from "../lib/protocol.js"

const H_BYTE = byte(H)
const K_BYTE = byte(K)
const handle = (conn: Ssl.Connection) =>
  Effect.gen(function*() {
    const command = (yield* conn.input.readExactly(1))[0]
    if (command === H) {
      yield* conn.output.write(H_BYTE)
    } else if (command === S || command === D) {
      const length = yield* conn.input.readExactly(8)
      const bytes = Number(Buffer.from(length).readBigUInt64BE(0))
      if (command === S) {
        yield* readCount(conn.input, bytes)
      } else {
        yield* Effect.all([writeCount(conn.output, bytes), readCount(conn.input, bytes)], {
          concurrency: 2,
          discard: true
        })
      }
      yield* conn.output.write(K_BYTE)
    }
    yield* drain(conn.input)
  })

// The whole server is one long-lived program: its scope holds the listeners, one with each
// identity, whose contexts detect truncation when `detectTruncation` is set. The two kinds run in
// processes of their own: a process that also serves over the JS-stream transport runs Node's
// stream code on more kinds of stream, and its reader over the native handle costs more for it
// (BENCHMARKS.md, session 8), which the raw node:tls server, serving only one kind, never pays.
export const serveEffect = (detectTruncation: boolean) => {
  const runtime = makeRuntime()
  void runtime.runPromise(Effect.scoped(Effect.gen(function*() {
    const listen = (kind: CertKind) =>
      Effect.gen(function*() {
        const context = yield* serverContext(kind, { detectTruncation })
        const listener = yield* Ssl.listen(0, { hostname: LISTEN_HOST, context })
        yield* Effect.forkScoped(Ssl.serve(listener, handle))
        return listener.address.port
      })
    const out: ServerPorts = { rsa: yield* listen("rsa"), ec: yield* listen("ec") }
    process.stdout.write(`${JSON.stringify(out)}\n`)
    return yield* Effect.never
  }))).catch((error) => {
    console.error("bench server (effect) failed:", error)
    process.exit(1)
  })
}
