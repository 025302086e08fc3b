/**
 * What every figure shares, without Effect (so that raw children start fast): the fixtures, the
 * raw node:tls options made from them, the bytes written, and child processes.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomFillSync } from "node:crypto"
import { readFileSync } from "node:fs"
import { constants, PerformanceObserver } from "node:perf_hooks"
import * as Tls from "node:tls"
import { fileURLToPath } from "node:url"

export const benchDir: string = fileURLToPath(new URL("..", import.meta.url))

export const fixture = (name: string): string =>
  fileURLToPath(new URL(`../../packages/core/test/fixtures/${name}`, import.meta.url))

/** The server identities the figures use. */
export type CertKind = "rsa" | "ec"

export const identities: Record<CertKind, { readonly chain: string; readonly key: string; readonly label: string }> = {
  rsa: { chain: fixture("server-chain.pem"), key: fixture("server.key"), label: "RSA-2048" },
  ec: { chain: fixture("server-ec-chain.pem"), key: fixture("server-ec.key"), label: "ECDSA P-256" }
}

export const rootCa: string = fixture("root-ca.pem")

/** The host name clients connect to and verify; it resolves to 127.0.0.1, where servers listen. */
export const HOST = "localhost"
export const LISTEN_HOST = "127.0.0.1"

/** Application write size of the bulk figures. */
export const CHUNK = 64 * 1024

/** Application write size of the small-writes figure. */
export const SMALL_CHUNK = 1024

/** 64 KiB of random bytes, written over and over (random so no layer can compress it). */
export const chunk: Buffer = randomFillSync(Buffer.alloc(CHUNK))

// ---------------------------------------------------------------------------------------------
// raw node:tls, from the same files

export const rawServerOptions = (kind: CertKind): Tls.TlsOptions => ({
  cert: readFileSync(identities[kind].chain),
  key: readFileSync(identities[kind].key)
})

/**
 * Client options trusting the fixture root CA. The secure context is made once here and shared by
 * every connection made with these options, as effect-ssl shares one per client context (passing
 * `ca` to each tls.connect would parse it and build a new context per connection).
 */
export const rawClientOptions = (tls13 = false): Tls.ConnectionOptions => ({
  secureContext: Tls.createSecureContext({
    ca: readFileSync(rootCa),
    ...(tls13 ? { minVersion: "TLSv1.3" as const, maxVersion: "TLSv1.3" as const } : {})
  })
})

/**
 * Writes `bytes` bytes in `piece`-sized writes (CHUNK by default; the last one shorter), waiting
 * for 'drain' whenever write says so.
 */
export const rawWriteCount = (socket: Tls.TLSSocket, bytes: number, done: () => void, piece: number = CHUNK): void => {
  let left = bytes
  const whole = piece === CHUNK ? chunk : chunk.subarray(0, piece)
  const go = () => {
    while (left > 0) {
      const n = Math.min(piece, left)
      left -= n
      if (!socket.write(n === piece ? whole : chunk.subarray(0, n))) {
        socket.once("drain", go)
        return
      }
    }
    done()
  }
  go()
}

// ---------------------------------------------------------------------------------------------
// Child processes

export interface Child {
  readonly child: ChildProcess
  /**
   * The child's CPU time so far (user + system, all threads), in microseconds, as its own
   * `process.cpuUsage()` says over the IPC channel (children/server.ts and children/client.ts
   * answer; spawn with `ipc: true`). Microsecond resolution, where /proc/PID/stat counts 10 ms
   * ticks: a quick run's handshakes take less than one tick.
   */
  readonly cpuMicros: () => Promise<number>
  /**
   * The same answer with the child's mark-compacts so far (V8's full collections, which a
   * figure's run may or may not meet: BENCHMARKS.md, session 13).
   */
  readonly usage: () => Promise<Usage>
  /** Sends a message over the IPC channel. */
  readonly send: (message: unknown) => void
  /** The next IPC message that `accept` accepts. */
  readonly message: <A>(accept: (message: unknown) => A | undefined) => Promise<A>
  /** The first line the child prints on stdout. */
  readonly firstLine: Promise<string>
  /** Everything the child printed on stdout. */
  readonly stdout: () => string
  readonly exited: Promise<number | NodeJS.Signals>
  readonly kill: () => Promise<void>
}

/** Whether this is the bundle bench/build.mjs made (`pnpm bench`) rather than the sources under tsx. */
export const compiled: boolean = import.meta.url.endsWith(".js")

/**
 * Runs a script of bench/ (`children/server.ts`, say) in a fresh Node: its bundle in bench/dist
 * when this runs compiled, else its source through tsx. Extra Node flags for children (say
 * `--cpu-prof`) come from the BENCH_CHILD_NODE_FLAGS environment variable.
 */
export const spawnScript = (
  script: string,
  args: ReadonlyArray<string>,
  nodeFlags: ReadonlyArray<string> = [],
  options: { readonly ipc?: boolean } = {}
): Child => {
  const extra = (process.env["BENCH_CHILD_NODE_FLAGS"] ?? "").split(/\s+/).filter((s) => s.length > 0)
  const entry = compiled ? ["dist/" + script.replace(/\.ts$/, ".js").replaceAll("/", "-")] : ["--import", "tsx", script]
  const child = spawn(process.execPath, [...nodeFlags, ...extra, ...entry, ...args], {
    cwd: benchDir,
    stdio: options.ipc === true ? ["ignore", "pipe", "inherit", "ipc"] : ["ignore", "pipe", "inherit"]
  })
  // IPC messages, each handed to the first waiter that accepts it; the waiters fail if the child goes.
  const waiters: Array<{ readonly offer: (message: unknown) => boolean; readonly fail: (error: Error) => void }> = []
  child.on("message", (message: unknown) => {
    const i = waiters.findIndex((w) => w.offer(message))
    if (i >= 0) waiters.splice(i, 1)
  })
  child.on("close", (code, signal) => {
    for (const w of waiters.splice(0)) w.fail(new Error(`${script} ${args.join(" ")} exited (${code ?? signal})`))
  })
  const message = <A>(accept: (message: unknown) => A | undefined) =>
    new Promise<A>((resolve, reject) => {
      if (child.connected !== true) {
        reject(new Error(`${script}: no IPC channel`))
        return
      }
      waiters.push({
        offer: (m) => {
          const a = accept(m)
          if (a === undefined) return false
          resolve(a)
          return true
        },
        fail: reject
      })
    })
  // A failed send (the child has gone) shows as the waiters failing on close.
  const send = (m: unknown) => {
    if (child.connected === true) child.send(m as never, () => {})
  }
  const usage = () => {
    const answer = message((m) => (isCpuAnswer(m) ? m : undefined))
    send("cpu")
    return answer
  }
  const cpuMicros = () => usage().then((u) => u.cpuMicros)
  let out = ""
  let lineSeen = false
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (s: string) => {
      out += s
      const nl = out.indexOf("\n")
      if (!lineSeen && nl >= 0) {
        lineSeen = true
        resolve(out.slice(0, nl))
      }
    })
    child.on("error", reject)
    child.on("close", (code, signal) => {
      if (!lineSeen) reject(new Error(`${script} ${args.join(" ")} exited (${code ?? signal}) without output`))
    })
  })
  // A child that prints nothing (children/client.ts talks over IPC) leaves this unread.
  firstLine.catch(() => {})
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.on("close", (code, signal) => resolve(code ?? signal ?? -1))
  })
  return {
    child,
    cpuMicros,
    usage,
    send,
    message,
    firstLine,
    stdout: () => out,
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
    }
  }
}

/** A child's CPU time (microseconds, all threads) and mark-compacts so far. */
export interface Usage {
  readonly cpuMicros: number
  readonly markCompacts: number
}

const isCpuAnswer = (m: unknown): m is Usage =>
  typeof m === "object" && m !== null && typeof (m as { cpuMicros?: unknown }).cpuMicros === "number" &&
  typeof (m as { markCompacts?: unknown }).markCompacts === "number"

/** User + system CPU time of this process so far (all threads), in microseconds. */
export const ownCpuMicros = (): number => {
  const used = process.cpuUsage()
  return used.user + used.system
}

/**
 * In a child spawned with `ipc: true`: answers the parent's "cpu" with this process's CPU time and
 * its mark-compacts so far, and exits when the parent goes (so that a bench that dies leaves no
 * server behind).
 */
export const answerCpuQueries = (): void => {
  if (process.send === undefined) return
  let markCompacts = 0
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as PerformanceEntry & { readonly detail?: { readonly kind?: number } }).detail
      if (detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        markCompacts++
      }
    }
  }).observe({ entryTypes: ["gc"] })
  process.on("message", (m: unknown) => {
    if (m === "cpu") process.send!({ cpuMicros: ownCpuMicros(), markCompacts } satisfies Usage)
  })
  process.on("disconnect", () => process.exit(0))
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
