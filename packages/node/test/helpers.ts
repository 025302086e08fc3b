/**
 * Shared test setup: the fixture paths and contexts built from them.
 */
import { type Pki, type Port, type Ssl, SslContext, type SslError, TestCertificates } from "@effect-ssl/core"
import type { FileSystem } from "@effect/platform/FileSystem"
import { NodeSsl } from "@effect-ssl/node"
import { NodeContext } from "@effect/platform-node"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { fileURLToPath } from "node:url"
import { Ssl as SslApi } from "@effect-ssl/core"

export const fixture = (name: string): string =>
  fileURLToPath(new URL(`../../core/test/fixtures/${name}`, import.meta.url))

export const TestLayer: Layer.Layer<Ssl.Ssl | Pki.Pki | NodeContext.NodeContext> = Layer.mergeAll(NodeSsl.layer, NodeContext.layer)

/** A server context with the fixture leaf + intermediate for localhost. */
export const serverContext = (
  chain = "server-chain.pem",
  key = "server.key",
  protocol: Parameters<typeof SslContext.makeServer>[0] = "auto"
): Effect.Effect<SslContext.ServerContext, SslError.SslError, FileSystem | Pki.Pki> =>
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeServer(protocol)
    yield* SslContext.loadCertificateChain(ctx, fixture(chain))
    yield* SslContext.loadPrivateKey(ctx, fixture(key), { rsa: false })
    return ctx
  })

/** A client context that trusts the fixture root CA. */
export const clientContext = (
  protocol: Parameters<typeof SslContext.makeClient>[0] = "auto"
): Effect.Effect<SslContext.ClientContext, SslError.SslError, FileSystem | Pki.Pki> =>
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeClient(protocol)
    yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
    return ctx
  })

/** A client context that trusts the fixture root CA and presents the fixture client certificate. */
export const clientWithCertificate: Effect.Effect<SslContext.ClientContext, SslError.SslError, FileSystem | Pki.Pki> = Effect.gen(
  function*() {
    const ctx = yield* clientContext()
    yield* SslContext.loadCertificateChain(ctx, fixture("client-chain.pem"))
    yield* SslContext.loadPrivateKey(ctx, fixture("client.key"))
    return ctx
  }
)

/** A server context (fixture chain) that requires a client certificate verifying against the fixture root. */
export const requiringClientCertificates: Effect.Effect<SslContext.ServerContext, SslError.SslError, FileSystem | Pki.Pki> = Effect
  .gen(function*() {
    const ctx = yield* serverContext()
    yield* SslContext.setVerify(ctx, true)
    yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
    return ctx
  })

/** A server context with the shipped insecure test certificate. */
export const testServerContext: Effect.Effect<SslContext.ServerContext, SslError.SslError, FileSystem | Pki.Pki> = Effect.gen(function*() {
  const ctx = yield* SslContext.makeServer()
  yield* SslContext.loadCertificateChain(ctx, TestCertificates.path)
  yield* SslContext.loadPrivateKey(ctx, TestCertificates.path)
  return ctx
})

// ---------------------------------------------------------------------------------------------
// Real peers: the `openssl` command line, and the process-level watcher.

/** The fixtures folder (the working directory of spawned `openssl` peers). */
export const fixturesDir: string = fileURLToPath(new URL("../../core/test/fixtures/", import.meta.url))

/** A TCP port that was free a moment ago: listened on (port 0) and closed again. */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.once("error", (error) => resume(Effect.die(error)))
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A running `openssl` child process whose output the test can wait on. */
export interface OpensslPeer {
  readonly child: ChildProcess.ChildProcess
  /** stdout so far */
  readonly stdout: () => string
  /** stdout and stderr so far, interleaved as they arrived */
  readonly output: () => string
  /** Waits until stdout+stderr match `pattern`; fails if the process exits first. */
  readonly waitFor: (pattern: RegExp) => Effect.Effect<RegExpMatchArray, Error>
  readonly write: (text: string) => Effect.Effect<void>
  readonly endInput: Effect.Effect<void>
  /** Waits for the process to exit; its exit code, or the signal that ended it. */
  readonly exited: Effect.Effect<number | NodeJS.Signals>
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
}

/**
 * Spawns `openssl …args` in the fixtures folder; the process is killed (SIGKILL) and reaped when
 * the scope closes.
 */
export const spawnOpenssl = (args: ReadonlyArray<string>): Effect.Effect<OpensslPeer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = ChildProcess.spawn("openssl", args, { cwd: fixturesDir, stdio: ["pipe", "pipe", "pipe"] })
      let stdout = ""
      let output = ""
      let exit: number | NodeJS.Signals | undefined
      const listeners = new Set<() => void>()
      const notify = () => {
        for (const listener of Array.from(listeners)) listener()
      }
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("latin1")
        output += chunk.toString("latin1")
        notify()
      })
      child.stderr.on("data", (chunk: Buffer) => {
        output += chunk.toString("latin1")
        notify()
      })
      // stdin of a peer that has exited or closed it must not crash the test with EPIPE.
      child.stdin.on("error", () => {})
      child.on("error", (error) => {
        output += `\n[spawn error: ${error.message}]`
        exit ??= -1
        notify()
      })
      child.on("close", (code, signal) => {
        exit = code ?? signal ?? -1
        notify()
      })
      const waitFor = (pattern: RegExp): Effect.Effect<RegExpMatchArray, Error> =>
        Effect.async<RegExpMatchArray, Error>((resume) => {
          const check = () => {
            const match = output.match(pattern)
            if (match !== null) {
              listeners.delete(check)
              resume(Effect.succeed(match))
            } else if (exit !== undefined) {
              listeners.delete(check)
              resume(Effect.fail(new Error(`openssl ${args[0]} exited (${exit}) before printing ${pattern}:\n${output}`)))
            }
          }
          listeners.add(check)
          check()
          return Effect.sync(() => listeners.delete(check))
        }).pipe(
          // A guard with a readable message instead of the test runner's bare timeout.
          Effect.timeoutFail({
            duration: "10 seconds",
            onTimeout: () => new Error(`openssl ${args[0]} never printed ${pattern}:\n${output}`)
          })
        )
      const exited = Effect.async<number | NodeJS.Signals>((resume) => {
        const check = () => {
          if (exit !== undefined) {
            listeners.delete(check)
            resume(Effect.succeed(exit))
          }
        }
        listeners.add(check)
        check()
        return Effect.sync(() => listeners.delete(check))
      })
      const peer: OpensslPeer = {
        child,
        stdout: () => stdout,
        output: () => output,
        waitFor,
        write: (text) =>
          Effect.async<void>((resume) => {
            child.stdin.write(text, () => resume(Effect.void))
          }),
        endInput: Effect.sync(() => void child.stdin.end()),
        exited,
        kill: (signal = "SIGKILL") => Effect.sync(() => void child.kill(signal))
      }
      return peer
    }),
    (peer) =>
      Effect.suspend(() => {
        if (peer.child.exitCode === null && peer.child.signalCode === null) peer.child.kill("SIGKILL")
        return peer.exited
      })
  )

/**
 * `openssl s_server` on 127.0.0.1 with the fixture server chain (plus `args`), ready once it
 * printed "ACCEPT". The port is picked by listening on port 0 and closing it first.
 */
export const sServer = (
  args: ReadonlyArray<string>
): Effect.Effect<{ readonly port: number; readonly peer: OpensslPeer }, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const peer = yield* spawnOpenssl([
      "s_server",
      "-accept",
      `127.0.0.1:${port}`,
      "-cert",
      "server.pem",
      "-cert_chain",
      "intermediate-ca.pem",
      "-key",
      "server.key",
      ...args
    ])
    yield* peer.waitFor(/^ACCEPT$/m)
    return { port, peer }
  }).pipe(
    // Another process may take the free port before s_server binds it: try another one.
    Effect.retry({ times: 3 })
  )

/**
 * Records every 'uncaughtException' and 'unhandledRejection' of the process from now on; a test
 * file asserts at its end that `seen` is empty.
 */
export const watchProcess = () => {
  const seen: Array<{ readonly kind: string; readonly error: unknown }> = []
  const onException = (error: unknown) => seen.push({ kind: "uncaughtException", error })
  const onRejection = (error: unknown) => seen.push({ kind: "unhandledRejection", error })
  process.on("uncaughtException", onException)
  process.on("unhandledRejection", onRejection)
  return {
    seen,
    stop: () => {
      process.off("uncaughtException", onException)
      process.off("unhandledRejection", onRejection)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Lifetimes: counting what the process holds, and waiting for conditions without sleeping.

/** What the process holds open: file descriptors and libuv TCP handles. */
export interface Resources {
  readonly fds: number
  readonly tcpSockets: number
  readonly tcpServers: number
}

/** The process's open file descriptors and TCP socket/server handles, now. */
export const resources: Effect.Effect<Resources> = Effect.sync(() => {
  let tcpSockets = 0
  let tcpServers = 0
  for (const name of process.getActiveResourcesInfo()) {
    if (name === "TCPSocketWrap") tcpSockets++
    else if (name === "TCPServerWrap") tcpServers++
  }
  return { fds: Fs.readdirSync("/proc/self/fd").length, tcpSockets, tcpServers }
})

/**
 * Polls `check` (every few milliseconds, at most `within`) until it holds; fails with `what` and
 * the last value seen otherwise. For states that settle asynchronously (a closed fd, a handle).
 */
export const eventually = <A>(
  what: string,
  probe: Effect.Effect<A>,
  check: (a: A) => boolean,
  within: Duration.DurationInput = "5 seconds"
): Effect.Effect<A, Error> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(Duration.decode(within))
    while (true) {
      const value = yield* probe
      if (check(value)) return value
      if (Date.now() > deadline) {
        return yield* Effect.fail(new Error(`${what}: still ${JSON.stringify(value)} after ${Duration.format(within)}`))
      }
      yield* Effect.sleep("5 millis")
    }
  })

/** Waits until the process holds no more fds or TCP handles than `baseline`. */
export const backTo = (baseline: Resources, within: Duration.DurationInput = "5 seconds") =>
  eventually(
    `resources back to ${JSON.stringify(baseline)}`,
    resources,
    (now) => now.fds <= baseline.fds && now.tcpSockets <= baseline.tcpSockets && now.tcpServers <= baseline.tcpServers,
    within
  )

/** Waits until a fiber is suspended (blocked on I/O or a wait), not running. */
export const suspended = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  eventually(`fiber ${fiber.id().id} suspended`, Fiber.status(fiber), (status) => status._tag === "Suspended")

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
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({ server, port: (server.address() as Net.AddressInfo).port, sockets, count })))
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
      socket.once("connect", () => resume(Effect.succeed({ socket, closed: closeOf(socket), received: () => received })))
      socket.on("error", (error) => {
        if (socket.connecting) resume(Effect.fail(error))
      })
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

/** A connection handler that echoes everything back, then closes its output (close_notify). */
export const echo = (conn: Ssl.Connection): Effect.Effect<void, SslError.SslError> =>
  Effect.zipRight(Stream.run(conn.input.stream, conn.output.sink), conn.output.close)

/**
 * A listener on 127.0.0.1 (ephemeral port) served by `handler` (default: echo) in the background
 * until the scope ends; failed handshakes end their connection only.
 */
export const serveOn = (
  context: SslContext.ServerContext,
  handler: (conn: Ssl.Connection) => Effect.Effect<void, unknown> = echo
): Effect.Effect<Ssl.Listener, SslError.SslError, Ssl.Ssl | Scope.Scope> =>
  Effect.gen(function*() {
    const listener = yield* SslApi.listen(0, { hostname: "127.0.0.1", context })
    yield* Effect.forkScoped(SslApi.serve(listener, handler))
    return listener
  })

// ---------------------------------------------------------------------------------------------
// Seeded randomness and raw TCP peers (hostile clients, broken servers).

/** A small seeded PRNG (mulberry32): numbers in [0, 1), the same sequence for the same seed. */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `n` bytes from a seeded PRNG. */
export const seededBytes = (random: () => number, n: number): Uint8Array => {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256)
  return out
}

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

/** How an input ended: cleanly (None after the data) or with a typed failure. */
export type Ending = { readonly data: string; readonly end: "eof" | string }

/** Reads until the input ends; `end` is "eof" for None, else the failure's tag and reason. */
export const drain = (input: Port.Input): Effect.Effect<Ending> =>
  Effect.gen(function*() {
    const decoder = new TextDecoder()
    let data = ""
    while (true) {
      const next = yield* Effect.either(input.read())
      if (Either.isLeft(next)) {
        const error = next.left
        return { data, end: `${error._tag}:${"reason" in error ? String(error.reason) : ""}` }
      }
      if (Option.isNone(next.right)) return { data, end: "eof" }
      data += decoder.decode(next.right.value)
    }
  })
