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
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"

const positional = process.argv.slice(2).filter((arg) => !arg.startsWith("--"))
const impl = positional[0]
const mib = Number(positional[1] ?? 1024)
const both = process.argv.includes("--both")
const gc = process.argv.includes("--gc")
const nodeFlags = (process.argv.find((arg) => arg.startsWith("--node-flags="))?.slice("--node-flags=".length) ?? "")
  .split(" ").filter((flag) => flag !== "")
const script = impl === "floor" ? ["floors/bulkServer.mjs"] : ["dist/children-server.js", "--impl", impl]
const args = [...nodeFlags, ...(gc ? ["--trace-gc-nvp"] : []), ...script]
const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit", "ipc"] })

// The child's first line of JSON is its ports; with --gc, V8's trace lines come before and after.
const gcTotals = { scavenges: 0, markCompacts: 0, allocated: 0 }
let pending = ""
const ports = await new Promise((resolve) => {
  let found = false
  child.stdout.on("data", (data) => {
    const lines = (pending + String(data)).split("\n")
    pending = lines.pop()
    for (const line of lines) {
      if (!found && line.startsWith("{")) {
        found = true
        resolve(JSON.parse(line))
      }
      if (line.includes("gc=s ")) gcTotals.scavenges++
      if (line.includes("gc=mc ")) gcTotals.markCompacts++
      const allocated = /allocated=(\d+)/.exec(line)
      if (allocated !== null) gcTotals.allocated += Number(allocated[1])
    }
  })
})
const ticks = () => {
  const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ")
  return Number(fields[11]) + Number(fields[12])
}
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
  const t0 = ticks()
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
  const server = (ticks() - t0) * 10 / mib
  const c = process.cpuUsage(c0)
  console.log(
    `${impl}${both ? " both ways" : ""}: ${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s, ` +
      `server ${server.toFixed(3)} ms/MiB, client ${((c.user + c.system) / 1000 / mib).toFixed(3)} ms/MiB`
  )
  socket.destroy()
}
if (gc) {
  // Give the trace of the last collections time to arrive.
  await new Promise((resolve) => setTimeout(resolve, 200))
  const records = runs * mib * 64
  console.log(
    `${impl} server GC: ${gcTotals.scavenges} scavenges, ${gcTotals.markCompacts} mark-compacts, ` +
      `${(gcTotals.allocated / records).toFixed(0)} bytes allocated per 16 KiB record read`
  )
}
child.kill()
