/**
 * Sends MiB (default 1024) three times with a raw node:tls client to a server process and prints
 * MB/s and the server process's CPU per MiB (from /proc: 10 ms ticks, enough over a GiB) and the
 * client's. The server: `raw` and `effect` are the bench's (dist/children-server.js), `floor` is
 * floors/bulkServer.mjs. Run from bench/ after `node bench/build.mjs`.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"

const impl = process.argv[2]
const mib = Number(process.argv[3] ?? 1024)
const args = impl === "floor" ? ["floors/bulkServer.mjs"] : ["dist/children-server.js", "--impl", impl]
const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit", "ipc"] })
const ports = await new Promise((resolve) =>
  child.stdout.once("data", (data) => resolve(JSON.parse(String(data).split("\n")[0])))
)
const ticks = () => {
  const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ")
  return Number(fields[11]) + Number(fields[12])
}
const ca = readFileSync("../packages/core/test/fixtures/root-ca.pem")
const chunk = Buffer.alloc(65536, 7)
for (let run = 0; run < 3; run++) {
  const socket = Tls.connect({ host: "localhost", port: ports.rsa, ca })
  await new Promise((resolve) => socket.once("secureConnect", resolve))
  const bytes = mib * 1024 * 1024
  const head = Buffer.alloc(9)
  head[0] = 0x73
  head.writeBigUInt64BE(BigInt(bytes), 1)
  const t0 = ticks()
  const c0 = process.cpuUsage()
  const start = performance.now()
  const done = new Promise((resolve) => socket.once("data", resolve))
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
    `${impl}: ${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s, server ${server.toFixed(3)} ms/MiB, ` +
      `client ${((c.user + c.system) / 1000 / mib).toFixed(3)} ms/MiB`
  )
  socket.destroy()
}
child.kill()
