/**
 * Floor of the server side of "handshakes sequential" (issue 12): node:tls's own server, each
 * connection handled by an Effect fiber of its own (one runFork per connection) that reads the
 * command, answers and waits for the client's end — what the bench's effect-ssl server does,
 * with nothing of effect-ssl. Prints its port as the bench server does; see instructions.sh.
 */
import * as Effect from "effect/Effect"
import { serveEachConnection } from "./tlsServer.mjs"

const H = Buffer.from("h")
const handle = (socket) =>
  Effect.gen(function*() {
    yield* Effect.async((resume) => {
      socket.once("data", () => resume(Effect.void))
    })
    yield* Effect.sync(() => socket.write(H))
    yield* Effect.async((resume) => {
      socket.once("end", () => resume(Effect.void))
      socket.resume()
    })
    yield* Effect.async((resume) => {
      socket.end(() => {
        socket.destroy()
        resume(Effect.void)
      })
    })
  })
serveEachConnection(handle)
