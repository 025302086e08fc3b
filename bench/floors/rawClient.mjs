/**
 * COUNT sequential handshakes by a raw node:tls client (connect, "h" there and back, close)
 * against PORT: the load instructions.sh puts on a server process.
 *
 *   node floors/rawClient.mjs PORT COUNT
 */
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"

const [port, count] = [Number(process.argv[2]), Number(process.argv[3])]
const secureContext = Tls.createSecureContext({
  ca: readFileSync("../packages/core/test/fixtures/root-ca.pem"),
  minVersion: "TLSv1.3"
})
const H = Buffer.from("h")
const one = () =>
  new Promise((resolve, reject) => {
    const socket = Tls.connect({ host: "localhost", port, secureContext }, () => socket.write(H))
    socket.once("data", () =>
      socket.end(() => {
        socket.destroy()
        resolve()
      }))
    socket.on("error", reject)
  })
for (let i = 0; i < count; i++) await one()
