/**
 * Floor of "memory per idle connection pair" (issue 12): what children/memory.ts measures for
 * effect-ssl, done with raw node:tls and the least Effect that any Effect TLS library must add —
 * node:tls's own server, every accepted connection handled by an Effect fiber of its own (one
 * runFork per connection) that waits to read in one `Effect.async` over the socket's 'data', and
 * tls.connect clients held open, reading in the background as plain sockets do. Nothing of
 * effect-ssl. The same procedure as children/memory.ts (32 warm-up pairs kept open, 32 connects
 * at a time, three GCs before each reading) and the same JSON line.
 *
 *   node --expose-gc bench/floors/memory.mjs --count 1000
 */
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"

const fixture = (name) => new URL(`../../packages/core/test/fixtures/${name}`, import.meta.url)
const arg = (name) => process.argv[process.argv.indexOf(`--${name}`) + 1]
const count = Number(arg("count"))
if (!(Number.isInteger(count) && count > 0)) throw new Error("usage: memory.mjs --count N")
const WARMUP = 32
const CONCURRENCY = 32
const gc = globalThis.gc
if (gc === undefined) throw new Error("memory.mjs needs --expose-gc")

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const snapshot = async () => {
  for (let i = 0; i < 3; i++) {
    gc()
    await sleep(20)
  }
  return process.memoryUsage()
}
const until = async (condition) => {
  while (!condition()) await sleep(5)
}

// One read: waits for the next chunk (null at the end) in one Effect.async, the socket paused
// between reads as a reader's buffer would make it.
const read = (socket) =>
  Effect.async((resume) => {
    const done = (value) => {
      socket.off("data", onData)
      socket.off("end", onEnd)
      socket.pause()
      resume(Effect.succeed(value))
    }
    const onData = (chunk) => done(chunk)
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
const drain = (socket) => {
  const loop = Effect.flatMap(read(socket), (chunk) => chunk === null ? Effect.void : loop)
  return loop
}

const runFork = Runtime.runFork(Runtime.defaultRuntime)
let accepted = 0
const sockets = []
const server = Tls.createServer({
  cert: readFileSync(fixture("server-chain.pem")),
  key: readFileSync(fixture("server.key"))
}, (socket) => {
  accepted++
  sockets.push(socket)
  socket.on("error", () => {})
  runFork(drain(socket))
})
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
const port = server.address().port
const secureContext = Tls.createSecureContext({ ca: readFileSync(fixture("root-ca.pem")) })
const connect = () =>
  new Promise((resolve, reject) => {
    const socket = Tls.connect({ host: "localhost", port, secureContext }, () => resolve(socket))
    socket.on("data", () => {})
    socket.on("error", reject)
  })
const clients = []
const open = async (n) => {
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) {
      next++
      clients.push(await connect())
    }
  }))
}
await open(WARMUP)
await until(() => accepted === WARMUP)
const before = await snapshot()
await open(count)
await until(() => accepted === WARMUP + count)
const after = await snapshot()
process.stdout.write(`${
  JSON.stringify({
    count,
    rss: (after.rss - before.rss) / count,
    heapUsed: (after.heapUsed - before.heapUsed) / count,
    external: (after.external - before.external) / count
  })
}\n`)
for (const socket of [...clients, ...sockets]) socket.destroy()
server.close()
process.exit(0)
