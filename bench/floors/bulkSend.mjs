/**
 * Sends MiB (default 1024) three times with a raw node:tls client to a server process and prints
 * MB/s and the server process's CPU per MiB (from /proc: 10 ms ticks, enough over a GiB) and the
 * client's. The server: `raw` and `effect` are the bench's (dist/children-server.js), `floor` is
 * floors/bulkServer.mjs. Run from bench/ after `node bench/build.mjs`:
 *
 *   node floors/bulkSend.mjs raw|effect|floor [MiB] [--both] [--gc] [--node-flags="..."]
 *
 *   --both         both ways at once (the bench's "d" command: the server sends MiB back while it
 *                  reads); CPU is per MiB of one direction
 *   --gc           the server runs with --trace-gc-nvp: prints its scavenges, mark-compacts and
 *                  the bytes V8 allocated per 16 KiB TLS record read (the three sends together,
 *                  start-up included)
 *   --node-flags   V8/Node flags for the server process, e.g. --node-flags=--max-semi-space-size=1
 */
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"
import { startServer } from "./tracedServer.mjs"

const positional = process.argv.slice(2).filter((arg) => !arg.startsWith("--"))
const impl = positional[0]
const mib = Number(positional[1] ?? 1024)
const both = process.argv.includes("--both")
const traceGc = process.argv.includes("--gc")
const nodeFlags = (process.argv.find((arg) => arg.startsWith("--node-flags="))?.slice("--node-flags=".length) ?? "")
  .split(" ").filter((flag) => flag !== "")
const script = impl === "floor" ? ["floors/bulkServer.mjs"] : ["dist/children-server.js", "--impl", impl]
const server = startServer(script, { nodeFlags, traceGc })
const ports = await server.ports
const ca = readFileSync("../packages/core/test/fixtures/root-ca.pem")
const chunk = Buffer.alloc(65536, 7)
const runs = 3
for (let run = 0; run < runs; run++) {
  const socket = Tls.connect({ host: "localhost", port: ports.rsa, ca })
  await new Promise((resolve) => socket.once("secureConnect", resolve))
  const bytes = mib * 1024 * 1024
  const head = Buffer.alloc(9)
  head[0] = both ? 0x64 : 0x73
  head.writeBigUInt64BE(BigInt(bytes), 1)
  const t0 = server.cpuMillis()
  const m0 = server.mainThreadMillis()
  const c0 = process.cpuUsage()
  const start = performance.now()
  // The server answers "k" after all it reads (and, both ways, after all it sends).
  const want = both ? bytes + 1 : 1
  let received = 0
  const done = new Promise((resolve) =>
    socket.on("data", (data) => {
      received += data.length
      if (received >= want) resolve()
    })
  )
  socket.write(head)
  let left = bytes
  await new Promise((resolve) => {
    const go = () => {
      while (left > 0) {
        left -= chunk.length
        if (!socket.write(chunk)) return void socket.once("drain", go)
      }
      resolve()
    }
    go()
  })
  await done
  const ms = performance.now() - start
  const serverMs = (server.cpuMillis() - t0) / mib
  const serverMainMs = (server.mainThreadMillis() - m0) / mib
  const c = process.cpuUsage(c0)
  console.log(
    `${impl}${both ? " both ways" : ""}: ${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s, ` +
      `server ${serverMs.toFixed(3)} ms/MiB (main thread ${serverMainMs.toFixed(3)}), client ${
        ((c.user + c.system) / 1000 / mib).toFixed(3)
      } ms/MiB`
  )
  socket.destroy()
}
if (traceGc) {
  await server.settle()
  const { allocated, markCompacts, scavenges } = server.gc
  console.log(
    `${impl} server GC: ${scavenges} scavenges, ${markCompacts} mark-compacts, ` +
      `${(allocated / (runs * mib * 64)).toFixed(0)} bytes allocated per 16 KiB record read`
  )
}
server.child.kill()
