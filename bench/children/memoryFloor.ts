/**
 * The floor half of children/memory.ts (issue 12): what every accepted connection runs when
 * node:tls serves it with the least Effect any Effect TLS library must add, an Effect fiber of its
 * own (one runFork per connection) that reads to the end through one `Effect.async` per chunk over
 * the socket's 'data', the socket paused between reads as a reader's buffer would make it. Nothing
 * of effect-ssl. Loaded only for `--impl floor`, so the raw side runs without Effect loaded.
 */
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Tls from "node:tls"

// One read: the next chunk, or null at the end.
const read = (socket: Tls.TLSSocket) =>
  Effect.async<Buffer | null>((resume) => {
    const done = (value: Buffer | null) => {
      socket.off("data", onData)
      socket.off("end", onEnd)
      socket.pause()
      resume(Effect.succeed(value))
    }
    const onData = (chunk: Buffer) => done(chunk)
    const onEnd = () => done(null)
    socket.on("data", onData)
    socket.once("end", onEnd)
    socket.resume()
    return Effect.sync(() => {
      socket.off("data", onData)
      socket.off("end", onEnd)
    })
  })

// Reads until the end, as the bench's effect-ssl handler (`drain`) does.
const drain = (socket: Tls.TLSSocket): Effect.Effect<void> => {
  const loop: Effect.Effect<void> = Effect.flatMap(read(socket), (chunk) => chunk === null ? Effect.void : loop)
  return loop
}

const runFork = Runtime.runFork(Runtime.defaultRuntime)

export const serveFloor = (socket: Tls.TLSSocket): void => {
  runFork(drain(socket))
}
