/**
 * Floors of the client side of "handshakes sequential" (issue 12): the smallest Effect programs
 * that do the same work as the bench's effect-ssl client (connect, one byte there and back,
 * close), written on raw node:tls, against the raw server process. Run from bench/ after
 * `node build.mjs`:
 *
 *   node floors/client.mjs COUNT one     the whole exchange in one Effect.async per handshake
 *   node floors/client.mjs COUNT steps   connect, write, read and close as separate Effect steps
 *                                        (Effect.scoped + acquireRelease), as a user's program has them
 *   … chain                              connect, write, read and close as four chained effects
 *   … scoped                             the same inside Effect.scoped
 *   … scope-finalizer                    the same, the close added to the scope with
 *                                        Scope.addFinalizerExit: the shape of effect-ssl's connect
 *   … add-finalizer                      the same with Effect.addFinalizer (FiberRefs diffed and
 *                                        patched around the close, as acquireRelease does)
 *   … --resumed                          each connection resumes the session the one before got
 *                                        (after one full handshake), as the bench's resumed figure
 *   … --warm N                           N handshakes first, not counted (V8's compilation)
 *
 * It prints the client's CPU per handshake (process.cpuUsage), as bench/dist/profile.js does.
 *
 * floors/instructions.sh counts the instructions per handshake of these and of the bench's own
 * clients with valgrind (repeatable on a loaded machine).
 */
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"

const count = Number(process.argv[2] ?? 300)
const variant = process.argv[3] ?? "one"
const server = spawn(process.execPath, ["dist/children-server.js", "--impl", "raw"], {
  stdio: ["ignore", "pipe", "inherit", "ipc"]
})
const ports = await new Promise((resolve) =>
  server.stdout.once("data", (data) => resolve(JSON.parse(String(data).split("\n")[0])))
)
const secureContext = Tls.createSecureContext({
  ca: readFileSync("../packages/core/test/fixtures/root-ca.pem"),
  minVersion: "TLSv1.3"
})
const H = Buffer.from("h")
const resumed = process.argv.includes("--resumed")
const plain = { host: "localhost", port: ports.rsa, secureContext }
let session
let reused = 0
// (a function: with --resumed each connection offers the last session node:tls gave)
const options = () => (resumed && session !== undefined ? { ...plain, session } : plain)
const tlsConnect = (onSecure) => {
  const socket = Tls.connect(options(), () => {
    if (socket.isSessionReused()) reused++
    onSecure()
  })
  if (resumed) socket.on("session", (next) => (session = next))
  return socket
}

const one = Effect.async((resume) => {
  const socket = tlsConnect(() => socket.write(H))
  socket.once("data", () =>
    socket.end(() => {
      socket.destroy()
      resume(Effect.void)
    }))
  socket.on("error", (error) => resume(Effect.fail(error)))
})

const connect = Effect.async((resume) => {
  const socket = tlsConnect(() => resume(Effect.succeed(socket)))
  socket.on("error", (error) => resume(Effect.fail(error)))
})
const close = (socket) =>
  Effect.async((resume) => {
    socket.end(() => {
      socket.destroy()
      resume(Effect.void)
    })
  })
const steps = Effect.scoped(Effect.gen(function*() {
  const socket = yield* Effect.acquireRelease(connect, close)
  yield* Effect.sync(() => socket.write(H))
  yield* Effect.async((resume) => {
    socket.once("data", () => resume(Effect.void))
  })
}))

const exchange = (socket) =>
  Effect.flatMap(
    Effect.sync(() => socket.write(H)),
    () => Effect.async((resume) => void socket.once("data", () => resume(Effect.void)))
  )
const chain = Effect.flatMap(connect, (socket) => Effect.flatMap(exchange(socket), () => close(socket)))
const scoped = Effect.scoped(chain)
const scopeFinalizer = Effect.scoped(Effect.flatMap(
  Effect.tap(
    connect,
    (socket) => Effect.flatMap(Scope.Scope, (scope) => Scope.addFinalizerExit(scope, () => close(socket)))
  ),
  exchange
))
const addFinalizer = Effect.scoped(Effect.flatMap(
  Effect.tap(connect, (socket) => Effect.addFinalizer(() => close(socket))),
  exchange
))
const variants = { one, steps, chain, scoped, "scope-finalizer": scopeFinalizer, "add-finalizer": addFinalizer }

// Each variant repeats with Effect.repeatN (a Schedule), as the bench's effect-ssl client did;
// "…-loop" with a plain loop of flatMaps, the cheapest way to repeat an effect.
const body = variants[variant.replace(/-loop$/, "")]
if (body === undefined) throw new Error(`no variant ${variant}: ${Object.keys(variants).join(", ")}`)
const warm = process.argv.includes("--warm") ? Number(process.argv[process.argv.indexOf("--warm") + 1]) : 0
const loop = (n) => n === 0 ? Effect.void : Effect.flatMap(body, () => loop(n - 1))
// with --resumed, one full handshake first to get a session
if (resumed) await Effect.runPromise(body)
await Effect.runPromise(loop(warm))
reused = 0
const cpu = process.cpuUsage()
await Effect.runPromise(variant.endsWith("-loop") ? loop(count) : Effect.repeatN(body, count - 1))
const used = process.cpuUsage(cpu)
console.log(
  `floor ${variant}${resumed ? " resumed" : ""}: cpu per handshake ${
    ((used.user + used.system) / count / 1000).toFixed(2)
  } ms` +
    (resumed ? `, ${reused} of ${count} resumed` : "")
)
server.kill()
process.exit(0)
