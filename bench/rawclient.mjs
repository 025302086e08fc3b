// Scratch (not committed): N raw node:tls handshakes (connect, "h" there and back, close) against a port.
import * as Tls from "node:tls"
import { readFileSync } from "node:fs"
const [port, count] = [Number(process.argv[2]), Number(process.argv[3])]
const ctx = Tls.createSecureContext({ ca: readFileSync("../packages/core/test/fixtures/root-ca.pem"), minVersion: "TLSv1.3" })
const H = Buffer.from([0x68])
const one = () => new Promise((resolve, reject) => {
  const socket = Tls.connect({ host: "localhost", port, secureContext: ctx }, () => socket.write(H))
  socket.once("data", () => socket.end(() => { socket.destroy(); resolve() }))
  socket.on("error", reject)
})
for (let i = 0; i < count; i++) await one()
