/**
 * Interrupting a pending connect: a TCP server that accepts and never answers holds the client in
 * its handshake (the ClientHello has arrived). From `Fiber.interrupt` of the pending
 * `Ssl.connect` (raw: `socket.destroy()`) to the moment the server sees the connection end, the
 * socket's release as its peer observes it. Microseconds; one run's figure is the median of its
 * `samples` attempts.
 */
import type { SslContext } from "@effect-ssl/core"
import { Ssl } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { HOST, LISTEN_HOST, rawClientOptions } from "../lib/common.js"
import type { EffectEnv, Runtime } from "../lib/effect.js"
import { median } from "../lib/stats.js"

/** A server that accepts and stays silent; `next()` resolves with the next connection whose ClientHello arrived. */
const silentServer = async () => {
  const waiting: Array<(socket: Net.Socket) => void> = []
  const arrived: Array<Net.Socket> = []
  const server = Net.createServer((socket) => {
    socket.on("error", () => {})
    socket.once("data", () => {
      const waiter = waiting.shift()
      if (waiter !== undefined) waiter(socket)
      else arrived.push(socket)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, LISTEN_HOST, resolve))
  return {
    port: (server.address() as Net.AddressInfo).port,
    next: () =>
      new Promise<Net.Socket>((resolve) => {
        const socket = arrived.shift()
        if (socket !== undefined) resolve(socket)
        else waiting.push(resolve)
      }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** When the server's socket sees the client go (end, reset or close), as performance.now(). */
const released = (socket: Net.Socket) =>
  new Promise<number>((resolve) => {
    const done = () => resolve(performance.now())
    socket.once("end", done)
    socket.once("close", done)
    socket.once("error", done)
  })

/**
 * The median of `samples` interrupts of the fiber that `connect(port)` runs in, against a silent
 * server; `runPromise` is the runtime the figure's side runs in.
 */
const interruptSamples = <R>(
  runPromise: (effect: Effect.Effect<number, never, R>) => Promise<number>,
  connect: (port: number) => Effect.Effect<unknown, unknown, R>,
  samples: number
): Promise<number> =>
  runPromise(Effect.acquireUseRelease(
    Effect.promise(silentServer),
    (server) =>
      Effect.gen(function*() {
        const times: Array<number> = []
        for (let i = 0; i < samples; i++) {
          const fiber = yield* Effect.fork(connect(server.port))
          const socket = yield* Effect.promise(server.next)
          const gone = released(socket)
          const start = performance.now()
          yield* Fiber.interrupt(fiber)
          times.push(((yield* Effect.promise(() => gone)) - start) * 1000)
          socket.destroy()
        }
        return median(times)
      }),
    (server) => Effect.promise(server.close)
  ))

export const effectInterrupt = (
  runtime: Runtime,
  client: SslContext.ClientContext,
  samples: number
): Promise<number> =>
  interruptSamples<EffectEnv>(
    (effect) => runtime.runPromise(effect),
    (port) => Effect.scoped(Ssl.connect(HOST, port, client)),
    samples
  )

/**
 * The floor of any Effect program for the same work: raw node:tls inside one `Effect.async` whose
 * canceller destroys the socket, forked and interrupted the same way. What it measures beyond
 * raw is Effect's own interruption (a message the fiber handles on its next turn, the fiber's
 * exit, the interrupter's resumption), which every Effect TLS library pays.
 */
export const floorInterrupt = (samples: number): Promise<number> => {
  const options = rawClientOptions()
  return interruptSamples<never>(
    (effect) => Effect.runPromise(effect),
    (port) =>
      Effect.async<Tls.TLSSocket>((resume) => {
        const socket = Tls.connect({ host: HOST, port, ...options })
        socket.on("error", () => {})
        socket.once("secureConnect", () => resume(Effect.succeed(socket)))
        return Effect.sync(() => socket.destroy())
      }),
    samples
  )
}

export const rawInterrupt = async (samples: number): Promise<number> => {
  const server = await silentServer()
  const options = rawClientOptions()
  try {
    const times: Array<number> = []
    for (let i = 0; i < samples; i++) {
      const client = Tls.connect({ host: HOST, port: server.port, ...options })
      client.on("error", () => {})
      const socket = await server.next()
      const gone = released(socket)
      const start = performance.now()
      client.destroy()
      times.push(((await gone) - start) * 1000)
      socket.destroy()
    }
    return median(times)
  } finally {
    await server.close()
  }
}
