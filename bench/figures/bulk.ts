/**
 * Bulk throughput over one TLS connection: one way with both ends in this process, and one way
 * or both ways at once with the server in a second process (children/server.ts).
 *
 * Timing starts once the handshake is done and ends when the receiving side has every byte
 * (one way in one process: the server sees the end of input; with a server process: the peer's
 * one-byte answer, sent once it has read everything). The functions start and stop the `meter`
 * there; the harness makes MB/s (10^6 bytes per second) and CPU per MiB of it. `piece` is the
 * size of the application's writes (64 KiB unless said).
 */
import { Ssl, type SslContext } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Tls from "node:tls"
import { CHUNK, HOST, LISTEN_HOST, rawClientOptions, rawServerOptions, rawWriteCount } from "../lib/common.js"
import { drain, readCount, type Runtime, writeCount } from "../lib/effect.js"
import type { Meter } from "../lib/meter.js"
import { D, header, K, S } from "../lib/protocol.js"

const check = (what: string, got: number, want: number) => {
  if (got !== want) throw new Error(`bench ${what}: received ${got} bytes, expected ${want}`)
}

// ---------------------------------------------------------------------------------------------
// One way, both ends in this process

export const effectOneProcess = (
  runtime: Runtime,
  contexts: { readonly server: SslContext.ServerContext; readonly client: SslContext.ClientContext },
  bytes: number,
  meter: Meter,
  piece: number = CHUNK
): Promise<void> =>
  runtime.runPromise(Effect.scoped(Effect.gen(function*() {
    const listener = yield* Ssl.listen(0, { hostname: LISTEN_HOST, context: contexts.server })
    const server = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => drain(conn.input))))
    const conn = yield* Ssl.connect(HOST, listener.address.port, contexts.client)
    yield* Effect.promise(() => meter.start())
    yield* writeCount(conn.output, bytes, piece)
    yield* conn.output.close
    const received = yield* Fiber.join(server)
    yield* Effect.promise(() => meter.stop())
    check("bulk (effect-ssl, one process)", received, bytes)
  })))

export const rawOneProcess = (bytes: number, meter: Meter, piece: number = CHUNK): Promise<void> =>
  new Promise((resolve, reject) => {
    const server = Tls.createServer(rawServerOptions("rsa"), (socket) => {
      let received = 0
      socket.on("data", (data: Buffer) => {
        received += data.length
      })
      socket.on("end", () => {
        meter.stop().then(() => {
          server.close()
          check("bulk (raw, one process)", received, bytes)
        }).then(resolve, reject)
      })
      socket.on("error", reject)
    })
    server.on("tlsClientError", reject)
    server.listen(0, LISTEN_HOST, () => {
      const port = (server.address() as { port: number }).port
      const client = Tls.connect({ host: HOST, port, ...rawClientOptions() }, () => {
        meter.start().then(() => rawWriteCount(client, bytes, () => client.end(), piece), reject)
      })
      client.on("error", reject)
    })
  })

// ---------------------------------------------------------------------------------------------
// With the server in a second process

export const effectRemote = (
  runtime: Runtime,
  client: SslContext.ClientContext,
  port: number,
  bytes: number,
  both: boolean,
  meter: Meter
): Promise<void> =>
  runtime.runPromise(Effect.scoped(Effect.gen(function*() {
    const conn = yield* Ssl.connect(HOST, port, client)
    yield* Effect.promise(() => meter.start())
    yield* conn.output.write(header(both ? D : S, bytes))
    if (both) {
      const [, received] = yield* Effect.all([writeCount(conn.output, bytes), readCount(conn.input, bytes + 1)], {
        concurrency: 2
      })
      yield* Effect.promise(() => meter.stop())
      check("bulk both ways (effect-ssl)", received, bytes + 1)
      return
    }
    yield* writeCount(conn.output, bytes)
    const answer = yield* conn.input.readExactly(1)
    yield* Effect.promise(() => meter.stop())
    if (answer[0] !== K) throw new Error("bench bulk (effect-ssl, second process): unexpected answer")
  })))

export const rawRemote = (port: number, bytes: number, both: boolean, meter: Meter): Promise<void> =>
  new Promise((resolve, reject) => {
    let received = 0
    let wrote = false
    let done = false
    const want = both ? bytes + 1 : 1
    const socket = Tls.connect({ host: HOST, port, ...rawClientOptions() }, () => {
      meter.start().then(() => {
        socket.write(header(both ? D : S, bytes))
        rawWriteCount(socket, bytes, () => {
          wrote = true
          finish()
        })
      }, reject)
    })
    const finish = () => {
      if (done || !wrote || received < want) return
      done = true
      meter.stop().then(() => {
        socket.end(() => socket.destroy())
        resolve()
      }, reject)
    }
    socket.on("data", (data: Buffer) => {
      received += data.length
      finish()
    })
    socket.on("error", reject)
  })
