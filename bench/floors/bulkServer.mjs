/**
 * Floor of the server side of "bulk one way, server in 2nd process" (issue 12): node:tls's own
 * server, each connection read by an Effect fiber of its own, one `Effect.async` per chunk that
 * node:tls delivers (a queue of chunks and one waiting reader) — the least any Effect program
 * reading a TLS socket chunk by chunk does, with nothing of effect-ssl. It answers the bench's "S"
 * command (bench/lib/protocol.ts: a command byte, an 8-byte length, that many bytes, then "k").
 * Prints its port as the bench server does. Run from bench/ (after `node bench/build.mjs`):
 *
 *   node floors/bulkServer.mjs                 then send to the printed port, or:
 *   node floors/bulkSend.mjs raw|effect|floor [MiB]
 */
import * as Effect from "effect/Effect"
import { serveEachConnection } from "./tlsServer.mjs"

const K = Buffer.from("k")

/** The socket's chunks, and the one reader waiting for the next. */
const reader = (socket) => {
  const chunks = []
  let waiting
  socket.on("data", (chunk) => {
    chunks.push(chunk)
    if (waiting !== undefined) {
      const resume = waiting
      waiting = undefined
      resume(Effect.void)
    }
  })
  const wait = Effect.async((resume) => {
    if (chunks.length > 0) return resume(Effect.void)
    waiting = resume
  })
  return Effect.suspend(() =>
    chunks.length > 0 ? Effect.succeed(chunks.shift()) : Effect.zipRight(wait, Effect.sync(() => chunks.shift()))
  )
}

// A loop of flatMaps, not a generator: the cheapest way to write the reading loop in Effect.
const handle = (socket) => {
  const read = reader(socket)
  let head = Buffer.alloc(0)
  let want = -1
  let got = 0
  const loop = Effect.flatMap(read, (chunk) => {
    if (want < 0) {
      head = Buffer.concat([head, chunk])
      if (head.length < 9) return loop
      want = Number(head.readBigUInt64BE(1))
      got = head.length - 9
    } else {
      got += chunk.length
    }
    return got < want ? loop : Effect.sync(() => socket.write(K))
  })
  return loop
}

serveEachConnection(handle)
