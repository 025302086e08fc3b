/**
 * Memory per idle established connection, in a fresh process: `--impl effect|raw|floor --count N`
 * (floor: node:tls with an Effect fiber reading each accepted connection, see memoryFloor.ts; not a
 * figure of `pnpm bench`: `node --expose-gc bench/dist/children-memory.js --impl floor --count 1000`
 * after `node bench/build.mjs`).
 * A server and N clients live in this process (both ends of each connection), every connection
 * handshaken (the client verifies the server) and idle, each end waiting to read. Prints one
 * JSON line: the growth of RSS, V8 heap used and external memory from before the N connections
 * to after, divided by N, in bytes. Run with --expose-gc.
 */
import * as Tls from "node:tls"
import { HOST, LISTEN_HOST, rawClientOptions, rawServerOptions, sleep } from "../lib/common.js"

const arg = (name: string) => process.argv[process.argv.indexOf(`--${name}`) + 1]
const impl = arg("impl")
const count = Number(arg("count"))
// Warm-up connections stay open: closing them would hand their memory back to the allocator for
// the measured ones to reuse.
const WARMUP = 32
const CONCURRENCY = 32

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("memory.ts needs --expose-gc")

const snapshot = async () => {
  for (let i = 0; i < 3; i++) {
    gc()
    await sleep(20)
  }
  return process.memoryUsage()
}

const report = (before: NodeJS.MemoryUsage, after: NodeJS.MemoryUsage) => {
  process.stdout.write(
    `${
      JSON.stringify({
        count,
        rss: (after.rss - before.rss) / count,
        heapUsed: (after.heapUsed - before.heapUsed) / count,
        external: (after.external - before.external) / count
      })
    }\n`
  )
}

const until = async (condition: () => boolean) => {
  while (!condition()) await sleep(5)
}

/** node:tls at both ends; `serve` is what each accepted connection runs (raw: a 'data' listener). */
const runRaw = async (serve: (socket: Tls.TLSSocket) => void) => {
  let accepted = 0
  const sockets: Array<Tls.TLSSocket> = []
  const server = Tls.createServer(rawServerOptions("rsa"), (socket) => {
    accepted++
    sockets.push(socket)
    socket.on("error", () => {})
    serve(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, LISTEN_HOST, resolve))
  const port = (server.address() as { port: number }).port
  const options = rawClientOptions()
  const connect = () =>
    new Promise<Tls.TLSSocket>((resolve, reject) => {
      const socket = Tls.connect({ host: HOST, port, ...options }, () => resolve(socket))
      socket.on("data", () => {})
      socket.on("error", reject)
    })
  const clients: Array<Tls.TLSSocket> = []
  const open = async (n: number) => {
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
  report(before, after)
  for (const socket of [...clients, ...sockets]) socket.destroy()
  server.close()
}

if (!(Number.isInteger(count) && count > 0)) throw new Error("memory.ts: --count wants a positive integer")
if (impl === "effect") {
  const { runEffect } = await import("./memoryEffect.js")
  await runEffect(count, { snapshot, report, until, warmup: WARMUP, concurrency: CONCURRENCY })
} else if (impl === "raw") {
  await runRaw((socket) => socket.on("data", () => {}))
} else if (impl === "floor") {
  const { serveFloor } = await import("./memoryFloor.js")
  await runRaw(serveFloor)
} else throw new Error("usage: memory.ts --impl effect|raw|floor --count N")
process.exit(0)
