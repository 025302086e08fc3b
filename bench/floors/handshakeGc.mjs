/**
 * The bench's server process under sequential handshakes from a raw node:tls client (connect,
 * "h" there and back, close), with its GC traced (`--trace-gc-nvp`): after 2,000 handshakes of
 * warm-up, COUNT more, and for those the rate, the server's CPU per handshake (/proc ticks), its
 * scavenges and mark-compacts, and the bytes V8 allocated per handshake. Run from bench/ after
 * `node bench/build.mjs`:
 *
 *   node floors/handshakeGc.mjs effect|raw [COUNT] [--resumed]
 *
 * SERVER_NODE_FLAGS="…" passes V8/Node flags to the server process.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"

const impl = process.argv[2]
const count = Number(process.argv[3] ?? 3000)
const resumed = process.argv.includes("--resumed")
const flags = (process.env.SERVER_NODE_FLAGS ?? "").split(" ").filter((flag) => flag !== "")
const child = spawn(process.execPath, [...flags, "--trace-gc-nvp", "dist/children-server.js", "--impl", impl], {
  stdio: ["ignore", "pipe", "inherit", "ipc"]
})

// The first line of JSON is the server's ports; V8's trace lines come before and after it.
let counting = false
const gc = { scavenges: 0, markCompacts: 0, allocated: 0 }
let pending = ""
const port = await new Promise((resolve) => {
  let found = false
  child.stdout.on("data", (data) => {
    const lines = (pending + String(data)).split("\n")
    pending = lines.pop()
    for (const line of lines) {
      if (!found && line.startsWith("{")) {
        found = true
        resolve(JSON.parse(line).rsa)
      }
      if (!counting) continue
      if (line.includes("gc=s ")) gc.scavenges++
      if (line.includes("gc=mc ")) gc.markCompacts++
      const allocated = /allocated=(\d+)/.exec(line)
      if (allocated !== null) gc.allocated += Number(allocated[1])
    }
  })
})
const ticks = () => {
  const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ")
  return Number(fields[11]) + Number(fields[12])
}
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

for (let i = 0; i < 2000; i++) await one()
counting = true
const t0 = ticks()
const start = performance.now()
for (let i = 0; i < count; i++) await one()
const ms = performance.now() - start
const cpu = (ticks() - t0) * 10
// Give the trace of the last collections time to arrive.
await new Promise((resolve) => setTimeout(resolve, 300))
console.log(
  `${impl}${resumed ? " resumed" : ""}: ${(count / ms * 1000).toFixed(0)} handshakes/s, ` +
    `server ${(cpu / count).toFixed(3)} ms per handshake, ${gc.scavenges} scavenges, ` +
    `${gc.markCompacts} mark-compacts, ${(gc.allocated / count / 1024).toFixed(1)} KiB allocated per handshake`
)
child.kill()
