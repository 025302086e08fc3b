/**
 * Floor of the server side of "handshakes sequential" (issue 12): node:tls's own server, each
 * connection handled by an Effect fiber of its own (one runFork per connection) that reads the
 * command, answers and waits for the client's end — what the bench's effect-ssl server does,
 * with nothing of effect-ssl. Prints its port as the bench server does; see instructions.sh.
 */
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"

const fixtures = "../packages/core/test/fixtures/"
const H = Buffer.from("h")
const runFork = Runtime.runFork(Runtime.defaultRuntime)
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
const server = Tls.createServer({
  cert: readFileSync(`${fixtures}server-chain.pem`),
  key: readFileSync(`${fixtures}server.key`)
}, (socket) => {
  socket.on("error", () => {})
  runFork(handle(socket))
})
server.on("tlsClientError", () => {})
process.on("SIGTERM", () => process.exit(0))
server.listen(0, "127.0.0.1", () => process.stdout.write(`${JSON.stringify({ rsa: server.address().port })}\n`))
