/**
 * The bench's server process under sequential handshakes from a raw node:tls client (connect,
 * "h" there and back, close), with its GC traced (`--trace-gc-nvp`): after 2,000 handshakes of
 * warm-up, COUNT more, and for those the rate, the server's CPU per handshake (/proc ticks; its
 * main thread's apart: the rest is V8's and libuv's helper threads), its scavenges and
 * mark-compacts, and the bytes V8 allocated per handshake. Run from bench/ after
 * `node bench/build.mjs`:
 *
 *   node floors/handshakeGc.mjs effect|raw|floor [COUNT] [--resumed]
 *
 * SERVER_NODE_FLAGS="…" passes V8/Node flags to the server process; WARM=N sets the warm-up;
 * SERVER_SCRIPT=PATH runs another server script (a patched copy of the bundle, or
 * floors/server.mjs, the floor: node:tls's server with an Effect fiber per connection).
 */
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"
import { startServer } from "./tracedServer.mjs"

const impl = process.argv[2]
const count = Number(process.argv[3] ?? 3000)
const resumed = process.argv.includes("--resumed")
const nodeFlags = (process.env.SERVER_NODE_FLAGS ?? "").split(" ").filter((flag) => flag !== "")
const server = startServer([process.env.SERVER_SCRIPT ?? "dist/children-server.js", "--impl", impl], {
  nodeFlags,
  traceGc: true
})
const port = (await server.ports).rsa
const secureContext = Tls.createSecureContext({
  ca: readFileSync("../packages/core/test/fixtures/root-ca.pem"),
  minVersion: "TLSv1.3"
})
const H = Buffer.from("h")
let session
const one = () =>
  new Promise((resolve, reject) => {
    const socket = Tls.connect(
      { host: "localhost", port, secureContext, session: resumed ? session : undefined },
      () => socket.write(H)
    )
    if (resumed) socket.on("session", (next) => (session = next))
    socket.once("data", () =>
      socket.end(() => {
        socket.destroy()
        resolve()
      }))
    socket.on("error", reject)
  })

const warm = Number(process.env.WARM ?? 2000)
for (let i = 0; i < warm; i++) await one()
server.resetGc()
const t0 = server.cpuMillis()
const main0 = server.mainThreadMillis()
const start = performance.now()
for (let i = 0; i < count; i++) await one()
const ms = performance.now() - start
const cpu = server.cpuMillis() - t0
const main = server.mainThreadMillis() - main0
await server.settle()
const { allocated, markCompacts, scavenges } = server.gc
console.log(
  `${impl}${resumed ? " resumed" : ""}: ${(count / ms * 1000).toFixed(0)} handshakes/s, ` +
    `server ${(cpu / count).toFixed(3)} ms per handshake (main thread ${
      (main / count).toFixed(3)
    }), ${scavenges} scavenges, ` +
    `${markCompacts} mark-compacts, ${(allocated / count / 1024).toFixed(1)} KiB allocated per handshake`
)
server.child.kill()
