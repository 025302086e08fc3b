/**
 * Handshakes per second against the server process: connect, TLS 1.3 handshake (the client
 * verifies the server), one byte there and back, close; sequentially or from `concurrency`
 * clients at once.
 */
import { Ssl, type SslContext } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Tls from "node:tls"
import { HOST, rawClientOptions } from "../lib/common.js"
import type { Runtime } from "../lib/effect.js"
import { byte, H } from "../lib/protocol.js"

const H_BYTE = byte(H)

/** One handshake; the negotiated protocol, for a sanity check. */
const effectOne = (client: SslContext.ClientContext, port: number) =>
  Effect.scoped(Effect.gen(function*() {
    const conn = yield* Ssl.connect(HOST, port, client)
    yield* conn.output.write(H_BYTE)
    const answer = yield* conn.input.readExactly(1)
    if (answer[0] !== H) throw new Error("bench handshakes (effect-ssl): unexpected answer")
    return (yield* conn.session).protocol
  }))

const rawOne = (options: Tls.ConnectionOptions, port: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = Tls.connect({ host: HOST, port, ...options }, () => {
      socket.write(H_BYTE)
    })
    socket.once("data", (data: Buffer) => {
      if (data[0] !== H) reject(new Error("bench handshakes (raw): unexpected answer"))
      const protocol = socket.getProtocol() ?? "?"
      socket.end(() => {
        socket.destroy()
        resolve(protocol)
      })
    })
    socket.on("error", reject)
  })

const split = (count: number, concurrency: number) =>
  Array.from({ length: concurrency }, (_, i) => Math.floor(count / concurrency) + (i < count % concurrency ? 1 : 0))

export const effectHandshakes = (
  runtime: Runtime,
  client: SslContext.ClientContext,
  port: number,
  count: number,
  concurrency: number
): Promise<number> =>
  runtime.runPromise(Effect.gen(function*() {
    const protocol = yield* effectOne(client, port)
    if (protocol !== "TLSv1.3") throw new Error(`bench handshakes (effect-ssl): negotiated ${protocol}`)
    const start = performance.now()
    yield* Effect.forEach(
      split(count, concurrency),
      (n) => (n === 0 ? Effect.void : Effect.repeatN(effectOne(client, port), n - 1)),
      { concurrency: "unbounded", discard: true }
    )
    return count / ((performance.now() - start) / 1000)
  }))

export const rawHandshakes = async (port: number, count: number, concurrency: number): Promise<number> => {
  const options = rawClientOptions(true)
  const protocol = await rawOne(options, port)
  if (protocol !== "TLSv1.3") throw new Error(`bench handshakes (raw): negotiated ${protocol}`)
  const start = performance.now()
  await Promise.all(split(count, concurrency).map(async (n) => {
    for (let i = 0; i < n; i++) await rawOne(options, port)
  }))
  return count / ((performance.now() - start) / 1000)
}
