/**
 * The floors' server: node:tls's own server with the fixture identity, every accepted connection
 * handed to `handle`, an Effect forked as a fiber of its own (one runFork per connection). Prints
 * its port as the bench's server does and ends on SIGTERM.
 */
import * as Runtime from "effect/Runtime"
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"

const fixtures = "../packages/core/test/fixtures/"

export const serveEachConnection = (handle) => {
  const runFork = Runtime.runFork(Runtime.defaultRuntime)
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
}
