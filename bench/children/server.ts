/**
 * The bench server in a process of its own: `--impl effect` (Ssl.listen + Ssl.serve),
 * `--impl effect-detect` (the same with contexts that detect truncation) or `--impl raw`
 * (tls.createServer), one listener with the RSA-2048 identity and one with the ECDSA P-256 one,
 * on 127.0.0.1. Prints its ServerPorts (lib/protocol.ts) once listening; runs until SIGTERM or
 * until its parent goes. See lib/protocol.ts for what it answers; spawned with an IPC channel, it
 * also answers "cpu" with its CPU time (lib/common.ts, answerCpuQueries).
 */
import * as Tls from "node:tls"
import { answerCpuQueries, type CertKind, LISTEN_HOST, rawServerOptions, rawWriteCount } from "../lib/common.js"
import { byte, D, H, K } from "../lib/protocol.js"

const impl = process.argv[process.argv.indexOf("--impl") + 1]

process.on("SIGTERM", () => process.exit(0))
answerCpuQueries()

const kinds: ReadonlyArray<CertKind> = ["rsa", "ec"]

const H_BYTE = byte(H)
const K_BYTE = byte(K)

// ---------------------------------------------------------------------------------------------
// raw node:tls

const rawConnection = (socket: Tls.TLSSocket) => {
  socket.on("error", () => {})
  let head: Buffer | undefined = Buffer.alloc(0)
  let command = 0
  let want = 0
  let got = 0
  let wrote = false
  let answered = false
  const maybeAnswer = () => {
    if (!answered && wrote && got >= want) {
      answered = true
      socket.write(K_BYTE)
    }
  }
  socket.on("data", (data: Buffer) => {
    if (head !== undefined) {
      head = head.length === 0 ? data : Buffer.concat([head, data])
      command = head[0]!
      if (command === H) {
        head = undefined
        answered = true
        socket.write(H_BYTE)
        return
      }
      if (head.length < 9) return
      want = Number(head.readBigUInt64BE(1))
      data = head.subarray(9)
      head = undefined
      if (command === D) {
        rawWriteCount(socket, want, () => {
          wrote = true
          maybeAnswer()
        })
      } else {
        wrote = true
      }
    }
    got += data.length
    maybeAnswer()
  })
}

const serveRaw = async () => {
  const out: Record<string, number> = {}
  for (const kind of kinds) {
    const server = Tls.createServer(rawServerOptions(kind), rawConnection)
    server.on("tlsClientError", () => {})
    await new Promise<void>((resolve) => server.listen(0, LISTEN_HOST, resolve))
    out[kind] = (server.address() as { port: number }).port
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
}

if (impl === "effect" || impl === "effect-detect") {
  ;(await import("./serverEffect.js")).serveEffect(impl === "effect-detect")
} else if (impl === "raw") await serveRaw()
else {
  console.error("usage: server.ts --impl effect|effect-detect|raw")
  process.exit(2)
}
