/**
 * Raw TCP peers for tests of what effect-ssl does with peers that break the rules: servers that
 * say nothing or are not TLS, clients that say nothing, send garbage or reset, and the ClientHello
 * node:tls sends, captured.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as Tls from "node:tls"

/** A TCP port that was free a moment ago: listened on (port 0) and closed again. */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.once("error", (error) => resume(Effect.die(error)))
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * A TCP server on 127.0.0.1 that accepts connections and never says anything: a peer stuck in
 * the handshake. Its sockets are destroyed when the scope closes.
 */
export const silentServer: Effect.Effect<
  { readonly port: number; readonly connections: () => number; readonly sockets: ReadonlySet<Net.Socket> },
  never,
  Scope.Scope
> = Effect.acquireRelease(
  Effect.async<{ server: Net.Server; port: number; sockets: Set<Net.Socket>; count: { n: number } }>((resume) => {
    const sockets = new Set<Net.Socket>()
    const count = { n: 0 }
    const server = Net.createServer((socket) => {
      count.n++
      sockets.add(socket)
      // It reads (and ignores) what it is sent, so that it sees the client's end and closes.
      socket.resume()
      socket.on("error", () => {})
      socket.on("close", () => sockets.delete(socket))
    })
    server.listen(
      0,
      "127.0.0.1",
      () => resume(Effect.succeed({ server, port: (server.address() as Net.AddressInfo).port, sockets, count }))
    )
  }),
  ({ server, sockets }) =>
    Effect.async<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ count, port, sockets }) => ({ port, connections: () => count.n, sockets })))

/** Completes once `socket` has closed (emitted 'close'), at once if it already has. */
export const closeOf = (socket: Net.Socket): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (socket.closed) return resume(Effect.void)
    const onClose = () => resume(Effect.void)
    socket.once("close", onClose)
    return Effect.sync(() => socket.off("close", onClose))
  })

/**
 * A raw node:net client connected to 127.0.0.1:port that says nothing; `closed` completes when
 * the other side has closed the connection (the socket saw 'close'). Destroyed with the scope.
 */
export const rawClient = (port: number) =>
  Effect.acquireRelease(
    Effect.async<{ socket: Net.Socket; closed: Effect.Effect<void>; received: () => number }, Error>((resume) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      let received = 0
      socket.on("data", (chunk: Buffer) => {
        received += chunk.length
      })
      socket.once(
        "connect",
        () => resume(Effect.succeed({ socket, closed: closeOf(socket), received: () => received }))
      )
      socket.on("error", (error) => {
        if (socket.connecting) resume(Effect.fail(error))
      })
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

/**
 * A node:net server on 127.0.0.1 that runs `onConnection` for every client (a peer that is not
 * TLS, or breaks the rules); its sockets are destroyed with the scope.
 */
export const tcpServer = (
  onConnection: (socket: Net.Socket) => void
): Effect.Effect<{ readonly port: number; readonly connections: () => number }, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.async<{ server: Net.Server; sockets: Set<Net.Socket>; count: { n: number } }>((resume) => {
        const sockets = new Set<Net.Socket>()
        const count = { n: 0 }
        const server = Net.createServer((socket) => {
          count.n++
          sockets.add(socket)
          socket.on("error", () => {})
          socket.on("close", () => sockets.delete(socket))
          onConnection(socket)
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets, count })))
      }),
      ({ server, sockets }) =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    ),
    ({ count, server }) => ({ port: (server.address() as Net.AddressInfo).port, connections: () => count.n })
  )

/**
 * The first TLS record a node:tls client sends (its ClientHello, for `servername`), captured by a
 * plain TCP server.
 */
export const captureClientHello = (servername = "localhost"): Effect.Effect<Uint8Array> =>
  Effect.scoped(Effect.gen(function*() {
    let resolve: (hello: Uint8Array) => void = () => {}
    const captured = new Promise<Uint8Array>((r) => (resolve = r))
    const { port } = yield* tcpServer((socket) => {
      let buffered = Buffer.alloc(0)
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk])
        if (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt16BE(3)) {
          resolve(new Uint8Array(buffered.subarray(0, 5 + buffered.readUInt16BE(3))))
          socket.destroy()
        }
      })
    })
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const socket = Tls.connect({ host: "127.0.0.1", port, servername })
        socket.on("error", () => {})
        return socket
      }),
      (socket) => Effect.sync(() => socket.destroy())
    )
    return yield* Effect.promise(() => captured)
  }))

/** How a raw client (`rawPeer`) behaves after it has sent its bytes. */
export type RawEnding =
  | "end" // half-closes (TCP FIN) and waits for the server to close
  | "silent" // says nothing more and waits for the server to close
  | "reset" // resets the connection (TCP RST) at once
  | "reset-after-reply" // waits for the server's first bytes, then resets

/**
 * A raw TCP client of 127.0.0.1:port that sends `bytes` (if any) and ends as `ending` says;
 * completes once its socket is closed, with the number of bytes the server sent back.
 */
export const rawPeer = (port: number, bytes: Uint8Array | string, ending: RawEnding): Effect.Effect<number> =>
  Effect.async<number>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port, allowHalfOpen: true })
    let received = 0
    socket.on("error", () => {})
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length
      if (ending === "reset-after-reply") socket.resetAndDestroy()
    })
    // A half-closed server still has to close: ours is closed once it has.
    socket.on("end", () => socket.end())
    socket.on("close", () => resume(Effect.succeed(received)))
    socket.once("connect", () => {
      if (bytes.length > 0) socket.write(bytes)
      if (ending === "end") socket.end()
      else if (ending === "reset") socket.resetAndDestroy()
    })
    return Effect.sync(() => socket.destroy())
  })
