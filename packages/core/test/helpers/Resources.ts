/**
 * What a test leaves behind: the process's uncaught errors, its file descriptors and TCP handles,
 * and waits for conditions that settle asynchronously (without sleeping in their place).
 *
 * A test file that checks for leaks as a whole calls `leakCheck()` at its top and runs
 * `released` as its last test.
 */
import { Ssl } from "@effect-ssl/core"
import { afterAll, beforeAll, expect } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Fs from "node:fs"
import { drain, localListener } from "./Connections.js"
import { clientContext, TestLayer } from "./Contexts.js"

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
 * What the process holds once node:tls is loaded and a first connection on loopback has come and
 * gone: a baseline that what node:tls and the fixtures keep open is part of.
 */
export const warmBaseline = Effect.gen(function*() {
  yield* Effect.scoped(Effect.gen(function*() {
    const listener = yield* localListener
    const server = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => drain(conn.input))))
    yield* Effect.scoped(
      Effect.flatMap(clientContext(), (context) => Ssl.connect("localhost", listener.address.port, context))
    )
    yield* Fiber.join(server)
  }))
  yield* backTo({ fds: Infinity, tcpSockets: 0, tcpServers: 0 })
  return yield* resources
}).pipe(Effect.provide(TestLayer))

/**
 * A test file's leak check, called at its top level: before the file's tests it records what the
 * process holds (`warmBaseline` when `warm`, else `resources`) and starts watching for uncaught
 * errors; `released`, run as the file's last test, waits until the process holds no more than
 * that and expects no uncaught error.
 */
export const leakCheck = (options: { readonly warm?: boolean } = {}) => {
  let baseline: Resources = { fds: 0, tcpSockets: 0, tcpServers: 0 }
  const watcher = watchProcess()
  beforeAll(async () => {
    baseline = await Effect.runPromise(options.warm === true ? warmBaseline : resources)
  })
  afterAll(() => watcher.stop())
  const released: Effect.Effect<void, Error> = Effect.gen(function*() {
    yield* backTo(baseline)
    expect(watcher.seen).toEqual([])
  })
  return { released }
}
