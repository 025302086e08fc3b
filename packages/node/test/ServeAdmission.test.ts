/**
 * Admission: what idle TCP connections that never send a ClientHello can take from a listener.
 * They do not spend `serve`'s handler concurrency (a good client is served at once, with the
 * handshake timeout far away), the listener holds at most `backlog` of them before their
 * handshake is done and resets the rest, and each one it holds costs a bounded amount of memory.
 */
import { Ssl, SslError } from "@effect-ssl/core"
import { afterAll, describe, expect, it } from "@effect/vitest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Tls from "node:tls"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { closeOf, rawClient } from "../../core/test/helpers/RawPeers.js"
import { eventually, resources, watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/** Far beyond every wait below: nothing here passes because a handshake timed out. */
const longTimeout: Duration.DurationInput = "60 seconds"

/** Bounds a wait that the old code made last until the handshake timeout (or for ever). */
const promptly = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, { duration: "10 seconds", onTimeout: () => new Error(`${what}: not within 10 s`) })

/** Echoes lines until the client ends. */
const echoLines = (conn: Ssl.Connection): Effect.Effect<void, SslError.SslError> =>
  Effect.gen(function*() {
    while (true) {
      const line = yield* conn.input.readLine
      if (Option.isNone(line)) return
      yield* conn.output.write(`echo ${line.value}\n`)
    }
  })

const listen = (backlog?: number, timeout: Duration.DurationInput = longTimeout) =>
  Effect.flatMap(
    serverContext(),
    (context) => Ssl.withHandshakeTimeout(Ssl.listen(0, { hostname: "127.0.0.1", context, backlog }), timeout)
  )

/** An effect-ssl client's round trip through the echo handler. */
const goodClient = (port: number) =>
  Effect.scoped(Effect.gen(function*() {
    const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
    yield* conn.output.write("hello\n")
    return yield* conn.input.readLine
  }))

/**
 * A plain TCP client that connects and says nothing. `outcome` completes when the connection ends:
 * "reset" when the server reset it, "closed" when the server closed it, with the bytes it sent.
 */
const idleClient = (port: number) =>
  Effect.acquireRelease(
    Effect.async<{ socket: Net.Socket; outcome: Effect.Effect<{ end: "reset" | "closed"; received: number }> }>(
      (resume) => {
        const socket = Net.connect({ host: "127.0.0.1", port })
        let received = 0
        let reset = false
        socket.on("data", (chunk: Buffer) => void (received += chunk.length))
        socket.on("error", (error) => void (reset ||= (error as { code?: string }).code === "ECONNRESET"))
        const outcome = Effect.map(
          closeOf(socket),
          () => ({ end: reset ? "reset" as const : "closed" as const, received })
        )
        // A connection the server resets at once may reset before 'connect' is even seen.
        socket.once("connect", () => resume(Effect.succeed({ socket, outcome })))
        socket.once("close", () => resume(Effect.succeed({ socket, outcome })))
      }
    ),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

/** Leaves an idle connection with a FIN and waits until the server has closed its side too. */
const leave = (client: { readonly socket: Net.Socket; readonly outcome: Effect.Effect<unknown> }) =>
  Effect.zipRight(Effect.sync(() => client.socket.end()), client.outcome)

describe("Ssl.serve with a concurrency limit", () => {
  it.scopedLive("3N idle TCP connections that never send a ClientHello: a good client is still served at once", () =>
    Effect.gen(function*() {
      const concurrency = 4
      const listener = yield* listen()
      yield* Effect.forkScoped(Ssl.serve(listener, echoLines, { concurrency }))
      // They connect (the kernel queues them first, in order) before the good client does.
      const idle = yield* Effect.forEach(
        Array.from({ length: 3 * concurrency }),
        () => rawClient(listener.address.port)
      )
      expect(yield* promptly("the good client's round trip", goodClient(listener.address.port))).toEqual(
        Option.some("echo hello")
      )
      // ... and not because the server gave up on the idle ones: they are all still connected.
      expect(idle.filter(({ socket }) => socket.closed)).toEqual([])
      // A second one too, and a few at once, each to its own handler.
      const many = yield* promptly(
        "good clients",
        Effect.forEach(Array.from({ length: concurrency }), () => goodClient(listener.address.port), {
          concurrency: "unbounded"
        })
      )
      expect(many).toEqual(Array.from({ length: concurrency }, () => Option.some("echo hello")))
    }).pipe(Effect.provide(TestLayer)))
})

describe("the listener's backlog bounds the connections it holds before their handshake", () => {
  const backlog = 4

  it.scopedLive("nobody accepting: backlog idle connections are held, the next ones are reset; once they leave, clients are served", () =>
    Effect.gen(function*() {
      const listener = yield* listen(backlog)
      const port = listener.address.port
      const held = yield* Effect.forEach(Array.from({ length: backlog }), () => idleClient(port))
      // Beyond the bound: a plain TCP client is reset without a byte ...
      const extra = yield* idleClient(port)
      expect(yield* promptly("the extra connection's reset", extra.outcome)).toEqual({ end: "reset", received: 0 })
      // ... and an effect-ssl client gets a typed error at once, not a hang.
      const refused = yield* promptly(
        "the refused client",
        Effect.flip(Effect.scoped(Ssl.connect("localhost", port, yield* clientContext())))
      )
      expect(refused).toSatisfy(SslError.isSslError)
      expect(`${refused._tag}:${"reason" in refused ? refused.reason : ""}`).toMatch(
        /^(ConnectError:Reset|HandshakeError:(Reset|PeerClosed))$/
      )
      // The held ones were not dropped to make room.
      expect(held.filter(({ socket }) => socket.closed)).toEqual([])

      // They leave (the listener drops a queued connection whose client half-closes) ...
      yield* Effect.forEach(held, leave, { discard: true })
      // ... and the listener serves again. (Retried while a reset may still come from the
      // listener's view of the departed ones, a loop turn behind the clients' own.)
      yield* Effect.forkScoped(Ssl.serve(listener, echoLines))
      const served = yield* promptly(
        "a client after they left",
        Effect.retry(goodClient(port), Schedule.spaced("10 millis"))
      )
      expect(served).toEqual(Option.some("echo hello"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("serving: idle connections in their handshake count, and free their place when they time out", () =>
    Effect.gen(function*() {
      const listener = yield* listen(backlog, "1 second")
      const port = listener.address.port
      yield* Effect.forkScoped(Ssl.serve(listener, echoLines))
      const held = yield* Effect.forEach(Array.from({ length: backlog }), () => idleClient(port))
      const extra = yield* idleClient(port)
      expect(yield* promptly("the extra connection's reset", extra.outcome)).toEqual({ end: "reset", received: 0 })
      // The handshake timeout ends the held ones (closed, not reset) ...
      for (const client of held) {
        expect(yield* promptly("the handshake timeout", client.outcome)).toMatchObject({ end: "closed" })
      }
      // ... and their places are free again.
      const served = yield* promptly(
        "a client after the timeouts",
        Effect.retry(goodClient(port), Schedule.spaced("10 millis"))
      )
      expect(served).toEqual(Option.some("echo hello"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("connections whose handshake is done do not count: more than backlog clients are served at once", () =>
    Effect.gen(function*() {
      const listener = yield* listen(2)
      yield* Effect.forkScoped(Ssl.serve(listener, echoLines))
      const clientCtx = yield* clientContext()
      // One after the other, each kept open: five established connections on a backlog of two.
      const conns = yield* Effect.forEach(
        Array.from({ length: 5 }),
        () => Ssl.connect("localhost", listener.address.port, clientCtx)
      )
      for (const [i, conn] of conns.entries()) {
        yield* conn.output.write(`client ${i}\n`)
        expect(yield* conn.input.readLine).toEqual(Option.some(`echo client ${i}`))
      }
    }).pipe(Effect.provide(TestLayer)))
})

// ---------------------------------------------------------------------------------------------
// Memory

/** `global.gc`, made available at run time (vitest's workers run without --expose-gc). */
const gc: () => void = (() => {
  V8.setFlagsFromString("--expose-gc")
  return Vm.runInNewContext("gc") as () => void
})()

const measure = Effect.sync(() => {
  gc()
  gc()
  const { heapUsed, rss } = process.memoryUsage()
  return { heapUsed, rss }
})

/**
 * `n` idle TCP connections to 127.0.0.1:port from a child process (so that their client sides
 * cost this process nothing), held until the scope ends; completes once all are connected.
 */
const idleFromChild = (port: number, n: number): Effect.Effect<void, Error, Scope.Scope> =>
  Effect.flatMap(
    Effect.acquireRelease(
      Effect.sync(() =>
        ChildProcess.spawn(process.execPath, [
          "-e",
          `const net = require("node:net")
           const [port, n] = process.argv.slice(1).map(Number)
           let connected = 0
           for (let i = 0; i < n; i++) {
             const socket = net.connect(port, "127.0.0.1", () => { if (++connected === n) process.stdout.write("connected\\n") })
             socket.on("error", (error) => { process.stderr.write(String(error) + "\\n"); process.exit(1) })
           }
           process.stdin.on("end", () => process.exit(0))
           process.stdin.resume()`,
          String(port),
          String(n)
        ], { stdio: ["pipe", "pipe", "inherit"] })
      ),
      (child) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          child.once("exit", () => resume(Effect.void))
          child.stdin.end()
        })
    ),
    (child) =>
      Effect.async<void, Error>((resume) => {
        child.stdout.once("data", () => resume(Effect.void))
        child.once("exit", (code) => resume(Effect.fail(new Error(`the client process exited (${code})`))))
      })
  )

/** Waits until this process holds `n` more TCP sockets than `before` (the server sides arrived). */
const arrived = (before: number, n: number) =>
  eventually(
    "server-side sockets",
    Effect.map(resources, (r) => r.tcpSockets - before),
    (count) => count >= n,
    "20 seconds"
  )

/** Heap after GC, polled until two readings a loop turn apart agree within 1%: the work settled. */
const settled = Effect.gen(function*() {
  let last = yield* measure
  for (let i = 0; i < 100; i++) {
    yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    const now = yield* measure
    if (Math.abs(now.heapUsed - last.heapUsed) < last.heapUsed / 100) return now
    last = now
  }
  return last
})

const pending = 500
const kib = (bytes: number) => Math.round(bytes / 1024 * 10) / 10

describe("memory per pending connection", () => {
  it.scopedLive(
    `${pending} idle pre-handshake connections: the listener's heap grows by a bounded amount each`,
    () =>
      Effect.gen(function*() {
        const figures: Record<string, { heap: number; rss: number }> = {}
        // The sockets of the tests before this one close a loop turn or two after their scopes.
        yield* eventually("earlier sockets closed", resources, (r) => r.tcpSockets === 0 && r.tcpServers === 0)
        /** Per connection: what `pending` idle connections to the server `listening` starts add. */
        const held = <R>(name: string, listening: Effect.Effect<number, unknown, R>) =>
          Effect.gen(function*() {
            const sockets = (yield* resources).tcpSockets
            yield* Effect.scoped(Effect.gen(function*() {
              const port = yield* listening
              const before = yield* settled
              yield* idleFromChild(port, pending)
              yield* arrived(sockets, pending)
              const after = yield* settled
              figures[name] = {
                heap: (after.heapUsed - before.heapUsed) / pending,
                rss: (after.rss - before.rss) / pending
              }
            }))
            // The server sides close as the client process goes: gone before the next measure.
            yield* eventually("server-side sockets closed", resources, (r) => r.tcpSockets <= sockets, "20 seconds")
          })

        // Raw node:tls, for comparison: a tls.Server handshakes every connection it accepts.
        const key = Fs.readFileSync(fixture("server.key"))
        const cert = Fs.readFileSync(fixture("server-chain.pem"))
        yield* held(
          "raw node:tls",
          Effect.acquireRelease(
            Effect.async<Tls.Server>((resume) => {
              const server = Tls.createServer({ key, cert, handshakeTimeout: 60_000 })
              server.on("tlsClientError", () => {})
              server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
            }),
            (server) => Effect.sync(() => server.close())
          ).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))
        )

        // Held by the listener, nobody accepting.
        yield* held("queued", Effect.map(listen(pending + 11), (listener) => listener.address.port))
        // Taken by Ssl.serve: each one is in its handshake, waiting for a ClientHello.
        yield* held(
          "serve",
          Effect.gen(function*() {
            const listener = yield* listen(pending + 11)
            yield* Effect.forkScoped(Ssl.serve(listener, echoLines))
            return listener.address.port
          })
        )
        const report = Object.entries(figures).map(([name, f]) =>
          `${name}: heap ${kib(f.heap)} KiB, RSS ${kib(f.rss)} KiB`
        )
        if (process.env["EFFECT_SSL_PRINT_MEMORY"] !== undefined) {
          process.stdout.write(`per pending connection: ${report.join("; ")}\n`)
        }
        // Bounds half as much again as measured (the README states the figures; before the fast
        // path a connection in its handshake under serve took about 39 KiB of heap): a queued
        // connection is a socket and little more; one in its handshake under serve adds the TLS
        // socket, its handshake's wait and the fiber that will run its handler.
        expect(figures["queued"]!.heap, report.join("; ")).toBeLessThan(4 * 1024)
        expect(figures["serve"]!.heap, report.join("; ")).toBeLessThan(24 * 1024)
        expect(figures["serve"]!.rss, report.join("; ")).toBeLessThan(48 * 1024)
      }).pipe(Effect.provide(TestLayer)),
    120_000
  )
})

const pairs = 300

describe("memory per established idle connection", () => {
  it.scopedLive(
    `${pairs} idle connections served by Ssl.serve, both ends in this process: the heap grows by a bounded amount each`,
    () =>
      Effect.gen(function*() {
        yield* eventually("earlier sockets closed", resources, (r) => r.tcpSockets === 0 && r.tcpServers === 0)
        const client = yield* clientContext()
        const perPair = yield* Effect.scoped(Effect.gen(function*() {
          const listener = yield* listen(pairs + 11)
          let served = 0
          yield* Effect.forkScoped(Ssl.serve(listener, (conn) => {
            served++
            return Effect.asVoid(conn.input.readAll)
          }))
          const port = listener.address.port
          const open = (n: number) =>
            Effect.forEach(Array.from({ length: n }), () => Ssl.connect("localhost", port, client), {
              concurrency: 16,
              discard: true
            })
          // A few first, so that what every connection shares (compiled code, the contexts' native
          // parts, pools) is made before the first reading.
          yield* open(16)
          yield* eventually("warm-up connections served", Effect.sync(() => served), (n) => n === 16)
          const before = yield* settled
          yield* open(pairs)
          yield* eventually("connections served", Effect.sync(() => served), (n) => n === 16 + pairs, "20 seconds")
          const after = yield* settled
          // (a snapshot to compare with another build's, when a change moves this figure)
          const snapshot = process.env["EFFECT_SSL_HEAP_SNAPSHOT"]
          if (snapshot !== undefined) V8.writeHeapSnapshot(snapshot)
          return { heap: (after.heapUsed - before.heapUsed) / pairs, rss: (after.rss - before.rss) / pairs }
        }))
        const report = `heap ${kib(perPair.heap)} KiB, RSS ${kib(perPair.rss)} KiB per pair`
        if (process.env["EFFECT_SSL_PRINT_MEMORY"] !== undefined) {
          process.stdout.write(`per established idle pair: ${report}\n`)
        }
        // 16.5 KiB of heap per pair here when this was written, 24.8 KiB before session 4's memory
        // work (the bench's compiled code: 13.8 and 23.5 KiB, raw node:tls 6.3; BENCHMARKS.md);
        // 14.9 KiB in session 9, and 17.5 while a connection kept the closures of the handshake
        // its listener began as it arrived, 18.1 while a client's socket kept its properties in a
        // dictionary (a `delete` after its ports were laid): the bound catches a connection that
        // keeps more again.
        expect(perPair.heap, report).toBeLessThan(16.5 * 1024)
      }).pipe(Effect.provide(TestLayer)),
    120_000
  )
})
