/**
 * The raw node:tls side of figures/handshakes.ts, without Effect (children/client.ts loads only
 * this for its raw runs): connect, TLS 1.3 handshake (the client verifies the server), one byte
 * there and back, close; sequentially or from `concurrency` clients at once. Resumed: each
 * client keeps the session the server sent last (the 'session' event) and passes it to its next
 * `tls.connect`, as a user resumes with node:tls.
 */
import * as Tls from "node:tls"
import { HOST, rawClientOptions } from "../lib/common.js"
import type { Meter } from "../lib/meter.js"
import { byte, H } from "../lib/protocol.js"

const H_BYTE = byte(H)

/** How `count` handshakes split over `concurrency` clients. */
export const split = (count: number, concurrency: number): ReadonlyArray<number> =>
  Array.from({ length: concurrency }, (_, i) => Math.floor(count / concurrency) + (i < count % concurrency ? 1 : 0))

interface RawResult {
  readonly protocol: string
  readonly reused: boolean
  /** the last session the server sent on this connection, if any */
  readonly session: Buffer | undefined
}

/** One handshake; with `resume`, offering `session` (if any) and keeping the one the server sends. */
const rawOne = (
  options: Tls.ConnectionOptions,
  port: number,
  resume: boolean,
  session: Buffer | undefined
): Promise<RawResult> =>
  new Promise((resolve, reject) => {
    let latest: Buffer | undefined
    const socket = Tls.connect({ host: HOST, port, ...options, ...(session !== undefined ? { session } : {}) }, () => {
      socket.write(H_BYTE)
    })
    if (resume) {
      socket.on("session", (s: Buffer) => {
        latest = s
      })
    }
    socket.once("data", (data: Buffer) => {
      if (data[0] !== H) reject(new Error("bench handshakes (raw): unexpected answer"))
      const result = { protocol: socket.getProtocol() ?? "?", reused: socket.isSessionReused(), session: latest }
      socket.end(() => {
        socket.destroy()
        resolve(result)
      })
    })
    socket.on("error", reject)
  })

/**
 * `count` handshakes from `concurrency` clients, timed by `meter` (the secure context is made
 * before). Every one must negotiate TLS 1.3; with `resumed`, each client first makes one full
 * handshake (before the meter starts) and every timed one must resume (`isSessionReused()`).
 */
export const rawHandshakes = async (
  port: number,
  count: number,
  concurrency: number,
  meter: Meter,
  options: { readonly resumed?: boolean } = {}
): Promise<void> => {
  const tls = rawClientOptions(true)
  const resumed = options.resumed === true
  const counts = split(count, concurrency).filter((n) => n > 0)
  // With `resumed`, the session each client carries from one connection to its next.
  const sessions: Array<Buffer | undefined> = counts.map(() => undefined)
  const one = async (client: number) => {
    const result = await rawOne(tls, port, resumed, sessions[client])
    if (result.protocol !== "TLSv1.3") throw new Error(`bench handshakes (raw): negotiated ${result.protocol}`)
    if (resumed) {
      if (sessions[client] !== undefined && !result.reused) throw new Error("bench handshakes (raw): not resumed")
      // A resumed connection may bring no new ticket before it is done: keep the one it resumed.
      sessions[client] = result.session ?? sessions[client]
      if (sessions[client] === undefined) throw new Error("bench handshakes (raw): the server sent no session")
    }
  }
  if (resumed) await Promise.all(counts.map((_, client) => one(client)))
  await meter.start()
  await Promise.all(counts.map(async (n, client) => {
    for (let i = 0; i < n; i++) await one(client)
  }))
  await meter.stop()
}
