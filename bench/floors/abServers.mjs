/**
 * Two builds of the bench's server side by side: sequential handshakes by a raw node:tls client
 * (connect, "h" there and back, close), in batches that alternate between the two server
 * processes (the order swaps every round), so that both see the same machine. Prints each side's
 * median and mean rate, the ratio B/A of the medians, and how many rounds B won. A build is a
 * checkout whose bench/dist was made by `node bench/build.mjs`; run from bench/:
 *
 *   node floors/abServers.mjs A_CHECKOUT B_CHECKOUT [--resumed] [--warm 1500] [--batch 300] [--rounds 24] [--impl effect]
 *
 * (`--resumed`: each connection offers the session the one before got from the same server.)
 * The same checkout twice gives B/A of about 1.00 and wins near half (0.999 and 7/16, session 9).
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import * as Tls from "node:tls"

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : fallback
}
const [a, b] = args.filter((arg, i) => !arg.startsWith("--") && !args[i - 1]?.startsWith("--"))
if (a === undefined || b === undefined) {
  console.error(
    "usage: node floors/abServers.mjs A_CHECKOUT B_CHECKOUT [--resumed] [--warm N] [--batch N] [--rounds N]"
  )
  process.exit(2)
}
const resumed = args.includes("--resumed")
const warm = Number(option("warm", 1500))
const batch = Number(option("batch", 300))
const rounds = Number(option("rounds", 24))
const impl = option("impl", "effect")

const start = (checkout) => {
  const bench = join(resolve(checkout), "bench")
  const child = spawn(process.execPath, [join(bench, "dist/children-server.js"), "--impl", impl], {
    cwd: bench,
    stdio: ["ignore", "pipe", "inherit", "ipc"]
  })
  const port = new Promise((resolve) =>
    child.stdout.once("data", (data) => resolve(JSON.parse(String(data).split("\n")[0]).rsa))
  )
  return { child, port }
}
const servers = [start(a), start(b)]
const ports = await Promise.all(servers.map((server) => server.port))

const secureContext = Tls.createSecureContext({
  ca: readFileSync(new URL("../../packages/core/test/fixtures/root-ca.pem", import.meta.url)),
  minVersion: "TLSv1.3"
})
const H = Buffer.from("h")
const sessions = new Map()
const one = (port) =>
  new Promise((resolve, reject) => {
    const socket = Tls.connect({
      host: "localhost",
      port,
      secureContext,
      session: resumed ? sessions.get(port) : undefined
    }, () => socket.write(H))
    if (resumed) socket.on("session", (session) => sessions.set(port, session))
    socket.once("data", () =>
      socket.end(() => {
        socket.destroy()
        resolve()
      }))
    socket.on("error", reject)
  })

for (let i = 0; i < warm; i++) {
  await one(ports[0])
  await one(ports[1])
}
const rates = [[], []]
for (let round = 0; round < rounds; round++) {
  for (const side of round % 2 === 0 ? [0, 1] : [1, 0]) {
    const t0 = performance.now()
    for (let i = 0; i < batch; i++) await one(ports[side])
    rates[side].push(batch / ((performance.now() - t0) / 1000))
  }
}
for (const server of servers) server.child.kill("SIGTERM")

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
const mean = (xs) => xs.reduce((sum, x) => sum + x, 0) / xs.length
const wins = rates[1].filter((rate, i) => rate > rates[0][i]).length
const describe = (xs) => `median ${median(xs).toFixed(0)}/s, mean ${mean(xs).toFixed(0)}/s`
console.log(`A ${a}: ${describe(rates[0])}`)
console.log(`B ${b}: ${describe(rates[1])}`)
console.log(
  `B/A ${(median(rates[1]) / median(rates[0])).toFixed(3)} (medians); B faster in ${wins} of ${rounds} rounds`
)
