// Scratch (not committed): the thin-wrapper floor of issue 12 — raw node:tls client, one
// Effect.async per handshake — against the raw server process, instructions per handshake.
import * as Effect from "effect/Effect"
import * as Tls from "node:tls"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
const count = Number(process.argv[2] ?? 300)
const variant = process.argv[3] ?? "one"
const server = spawn(process.execPath, ["dist/children-server.js", "--impl", "raw"], { stdio: ["ignore", "pipe", "inherit", "ipc"] })
const ports = await new Promise((r) => server.stdout.once("data", (d) => r(JSON.parse(String(d).split("\n")[0]))))
const ctx = Tls.createSecureContext({ ca: readFileSync("../packages/core/test/fixtures/root-ca.pem"), minVersion: "TLSv1.3" })
const H = Buffer.from([0x68])
const one = Effect.async((resume) => {
  const socket = Tls.connect({ host: "localhost", port: ports.rsa, secureContext: ctx }, () => socket.write(H))
  socket.once("data", () => socket.end(() => { socket.destroy(); resume(Effect.void) }))
  socket.on("error", (e) => resume(Effect.fail(e)))
})
// the same split in the steps a user's program has: connect, write, read, close
const connect = Effect.async((resume) => {
  const socket = Tls.connect({ host: "localhost", port: ports.rsa, secureContext: ctx }, () => resume(Effect.succeed(socket)))
  socket.on("error", (e) => resume(Effect.fail(e)))
})
const steps = Effect.scoped(Effect.gen(function*() {
  const socket = yield* Effect.acquireRelease(connect, (s) => Effect.async((resume) => { s.end(() => { s.destroy(); resume(Effect.void) }) }))
  yield* Effect.sync(() => socket.write(H))
  yield* Effect.async((resume) => { socket.once("data", () => resume(Effect.void)) })
}))
await Effect.runPromise(Effect.repeatN(variant === "one" ? one : steps, count - 1))
server.kill()
process.exit(0)
