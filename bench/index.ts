/**
 * pnpm bench: effect-ssl against raw node:tls (and sha1 against node:crypto and openssl), side by
 * side in one run.
 *
 *   pnpm bench                       every figure, full sizes; writes bench/results.json
 *   pnpm bench --quick               small sizes, for a fast look (writes bench/results.local.json)
 *   pnpm bench --only handshake      only some figures: a comma-separated list of group ids
 *                                    (bulk, bulk1k, remote, both, handshake, cold, resume, memory,
 *                                    interrupt, startup, sha1) or words of figure names
 *                                    ("truncation": the truncation-detection rows); writes
 *                                    bench/results.local.json
 *   pnpm bench --out PATH            where to write the results
 *   pnpm bench --runs N              runs per subject (at least 5; default 5)
 *
 * For every figure the effect-ssl runs and the raw node:tls runs alternate (the order rotates
 * from one run to the next), and the table shows each side's median with min and max over the
 * runs, and the ratio of the medians (effect / raw). Bulk and handshake figures also measure the
 * CPU time of each process per MiB or per handshake over the same runs, in a second table.
 */
import type { SslContext } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { availableParallelism, cpus, loadavg, totalmem } from "node:os"
import { dirname, join, resolve } from "node:path"
import { effectOneProcess, effectRemote, rawOneProcess, rawRemote } from "./figures/bulk.js"
import { coldHandshakes } from "./figures/cold.js"
import { effectHandshakes, rawHandshakes } from "./figures/handshakes.js"
import { effectInterrupt, floorInterrupt, rawInterrupt } from "./figures/interrupt.js"
import { cliHelp, nodeNothing } from "./figures/startup.js"
import { benchDir, type CertKind, type Child, compiled, SMALL_CHUNK, spawnScript } from "./lib/common.js"
import { clientContext, makeRuntime, type Runtime, serverContext } from "./lib/effect.js"
import { Meter, rate, type Sample } from "./lib/meter.js"
import { CLI_STARTUP_TARGET_MS, FIGURES, meets, TARGETS, truncation } from "./lib/names.js"
import type { ServerPorts } from "./lib/protocol.js"
import { type Figure, figure, formatCpuTable, formatNumber, formatTable, withCpu } from "./lib/stats.js"
import { benchSha1 } from "./sha1.js"

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  readonly quick: boolean
  readonly only: ReadonlyArray<string> | undefined
  readonly out: string
  readonly runs: number
}

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag)
    if (i < 0) return undefined
    const v = argv[i + 1]
    if (v === undefined || v.startsWith("--")) throw new Error(`${flag} wants a value`)
    return v
  }
  const known = new Set(["--quick", "--only", "--out", "--runs"])
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a.startsWith("--") && a !== "--" && !known.has(a)) throw new Error(`unknown option ${a} (see bench/index.ts)`)
    if (a === "--only" || a === "--out" || a === "--runs") i++
  }
  const quick = argv.includes("--quick")
  const only = value("--only")?.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0)
  const runs = Number(value("--runs") ?? 5)
  if (!Number.isInteger(runs) || runs < 5) throw new Error("--runs wants an integer of at least 5")
  const out = value("--out") ??
    join(benchDir, quick || only !== undefined ? "results.local.json" : "results.json")
  return { quick, only, out: resolve(out), runs }
}

interface Sizes {
  readonly bulkBytes: number
  /** bytes of the 1 KiB-writes figure: a write per KiB costs more per byte, so fewer */
  readonly smallWriteBytes: number
  readonly handshakes: number
  readonly concurrentHandshakes: number
  readonly concurrency: number
  /** handshakes each side makes before the handshake figures, for V8 to finish compiling */
  readonly warmupHandshakes: number
  /** handshakes of a fresh client process against a fresh server process */
  readonly coldHandshakes: number
  readonly resumedHandshakes: number
  readonly idleConnections: number
  readonly interruptSamples: number
  /** interrupts each side makes before the interrupt figures, for V8 to compile that path */
  readonly interruptWarmup: number
  readonly startupSamples: number
  readonly sha1Mib: number
}

const MiB = 1024 * 1024

const FULL: Sizes = {
  bulkBytes: 512 * MiB,
  smallWriteBytes: 512 * MiB,
  handshakes: 300,
  concurrentHandshakes: 1024,
  concurrency: 32,
  warmupHandshakes: 2000,
  coldHandshakes: 300,
  resumedHandshakes: 300,
  idleConnections: 1000,
  interruptSamples: 51,
  interruptWarmup: 2000,
  startupSamples: 11,
  sha1Mib: 256
}

const QUICK: Sizes = {
  bulkBytes: 4 * MiB,
  smallWriteBytes: 1 * MiB,
  handshakes: 5,
  concurrentHandshakes: 32,
  concurrency: 32,
  warmupHandshakes: 16,
  coldHandshakes: 5,
  resumedHandshakes: 5,
  // Not fewer: over 20 connections the raw side's heap growth (about 130 KiB) is within what a
  // forced GC's leftovers move, and the figure could come out negative.
  idleConnections: 100,
  interruptSamples: 5,
  interruptWarmup: 20,
  startupSamples: 3,
  sha1Mib: 4
}

/** Concurrent clients of the handshake warm-ups (the count is what matters to V8; this is faster). */
const WARMUP_CONCURRENCY = 8

// ---------------------------------------------------------------------------------------------
// Running

const log = (line: string) => process.stderr.write(`${line}\n`)

const logFigure = (f: Figure) => {
  const cpu = (f.cpu ?? []).map((c) =>
    `; cpu ${c.process} ${formatNumber(c.effect.median)} vs ${formatNumber(c.raw.median)} ${c.unit}`
  ).join("")
  const compacts = f.serverMarkCompacts === undefined
    ? ""
    : `; server mark-compacts per run ${f.serverMarkCompacts.effect.join(",")} vs ${f.serverMarkCompacts.raw.join(",")}`
  log(
    `  ${f.name}: effect ${formatNumber(f.effect.median)}, raw ${formatNumber(f.raw.median)} ${f.unit} (${
      f.ratio.toFixed(3)
    }x)${cpu}${compacts}`
  )
}

interface Subject {
  readonly run: () => Promise<Sample>
}

/**
 * Runs every subject `runs` times, in turn, and rotates who goes first from one run to the next
 * (with two subjects: the order flips). The samples, by subject.
 */
const alternate = async (
  runs: number,
  subjects: ReadonlyArray<Subject>
): Promise<ReadonlyArray<ReadonlyArray<Sample>>> => {
  const out = subjects.map(() => [] as Array<Sample>)
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < subjects.length; k++) {
      const j = (i + k) % subjects.length
      // No forced GC between runs: a full collection shrinks the heap, and the next run (the
      // allocation-heavier side most) then pays for growing it back, which distorted the figures.
      out[j]!.push(await subjects[j]!.run())
    }
  }
  return out
}

/** A figure from two subjects' samples, with CPU per unit of work if the samples have it. */
const pair = (
  spec: { readonly name: string; readonly unit: string },
  cpuUnit: string | undefined,
  effect: ReadonlyArray<Sample>,
  raw: ReadonlyArray<Sample>
): Figure => {
  const f = {
    ...figure(spec.name, spec.unit, effect.map((s) => s.value), raw.map((s) => s.value)),
    runs: { effect: effect.map((s) => s.value), raw: raw.map((s) => s.value) }
  }
  const withCpuTimes = cpuUnit === undefined ? f : withCpu(f, cpuUnit, effect.map((s) => s.cpu), raw.map((s) => s.cpu))
  const compacts = (samples: ReadonlyArray<Sample>) =>
    samples.flatMap((s) => (s.serverMarkCompacts === undefined ? [] : [s.serverMarkCompacts]))
  const e = compacts(effect)
  const r = compacts(raw)
  const out = e.length === effect.length && r.length === raw.length && e.length > 0
    ? { ...withCpuTimes, serverMarkCompacts: { effect: e, raw: r } }
    : withCpuTimes
  logFigure(out)
  return out
}

/** For figures measured by a single number per run (no CPU). */
const plain = (value: Promise<number>): Promise<Sample> => value.then((v) => ({ value: v, cpu: {} }))

/** Runs both subjects alternately; the figure. */
const compare = async (
  spec: { readonly name: string; readonly unit: string },
  runs: number,
  effect: () => Promise<number>,
  raw: () => Promise<number>
): Promise<Figure> => {
  const [e, r] = await alternate(runs, [{ run: () => plain(effect()) }, { run: () => plain(raw()) }])
  return pair(spec, undefined, e!, r!)
}

/** The effect-ssl contexts, default ones and twins that differ in one setting. */
interface Contexts {
  readonly server: Record<CertKind, SslContext.ServerContext>
  readonly serverDetect: SslContext.ServerContext
  readonly client: SslContext.ClientContext
  readonly clientDetect: SslContext.ClientContext
  readonly client13: SslContext.ClientContext
  readonly client13Detect: SslContext.ClientContext
  /** the default session cache (on): the resumed-handshakes figure */
  readonly client13Resume: SslContext.ClientContext
}

const makeContexts = Effect.all({
  server: Effect.all({ rsa: serverContext("rsa"), ec: serverContext("ec") }),
  serverDetect: serverContext("rsa", { detectTruncation: true }),
  client: clientContext("auto"),
  clientDetect: clientContext("auto", { detectTruncation: true }),
  client13: clientContext("tls1.3"),
  client13Detect: clientContext("tls1.3", { detectTruncation: true }),
  client13Resume: clientContext("tls1.3", { sessionCache: true })
})

/** A server process: what it listens on, and the process (asked for its CPU time). */
interface Server {
  readonly ports: ServerPorts
  readonly child: Child
}

interface Env {
  readonly runtime: Runtime
  readonly sizes: Sizes
  readonly runs: number
  readonly contexts: Contexts
  /** The server processes (started on first use). */
  readonly servers: () => Promise<{ readonly effect: Server; readonly raw: Server }>
  /**
   * The effect-ssl server process whose contexts detect truncation (started on first use): a
   * process of its own, so that the other figures' server runs only the native transport, as
   * raw node:tls's does.
   */
  readonly detectServer: () => Promise<Server>
  /** Whether --only asks for the figure of this name. */
  readonly want: (name: string) => boolean
}

interface Group {
  readonly id: string
  readonly names: ReadonlyArray<string>
  readonly run: (env: Env) => Promise<ReadonlyArray<Figure>>
}

/**
 * Which effect-ssl variants a figure's runs need: effect-ssl as it comes ("effect") and with
 * truncation detection on ("detect"), as --only asks. Raw node:tls runs in either case, once.
 */
type Variant = "effect" | "detect"

const variantsOf = (env: Env, spec: { readonly name: string; readonly unit: string }): ReadonlyArray<Variant> => [
  ...(env.want(spec.name) ? ["effect" as const] : []),
  ...(env.want(truncation(spec).name) ? ["detect" as const] : [])
]

/**
 * A figure and its "(truncation detection)" twin from the same alternating runs: each run makes
 * one sample of every variant wanted and one of raw node:tls, and both figures share the raw ones.
 */
const withTwin = async (
  env: Env,
  spec: { readonly name: string; readonly unit: string },
  cpuUnit: string,
  variants: ReadonlyArray<Variant>,
  effect: (variant: Variant) => Promise<Sample>,
  raw: () => Promise<Sample>
): Promise<ReadonlyArray<Figure>> => {
  if (variants.length === 0) return []
  const samples = await alternate(env.runs, [...variants.map((v) => ({ run: () => effect(v) })), { run: raw }])
  const rawSamples = samples[variants.length]!
  return variants.map((v, i) => pair(v === "effect" ? spec : truncation(spec), cpuUnit, samples[i]!, rawSamples))
}

/** MB/s (10^6 bytes per second) and CPU per MiB moved, from a bulk run's meter. */
const bulkSample = (meter: Meter, moved: number): Sample =>
  rate(meter, moved, {
    scale: 1e-6,
    cpuUnits: moved / MiB,
    clientName: meter.server === undefined ? "both ends" : "client"
  })

const PER_MIB = "ms/MiB"
const PER_HANDSHAKE = "ms/handshake"

/** One bulk run timed by a fresh meter (with the server process's CPU, when there is one). */
const bulkRun = async (
  moved: number,
  server: Child | undefined,
  run: (meter: Meter) => Promise<void>
): Promise<Sample> => {
  const meter = new Meter(server)
  await run(meter)
  return bulkSample(meter, moved)
}

/** One handshakes run timed by a fresh meter. */
const handshakeRun = async (count: number, server: Child, run: (meter: Meter) => Promise<void>): Promise<Sample> => {
  const meter = new Meter(server)
  await run(meter)
  return rate(meter, count)
}

/** Runs without measuring (warm-ups). */
const untimed = (run: (meter: Meter) => Promise<void>): Promise<void> => run(new Meter())

/** Bulk one way with both ends in this process, in `piece`-sized writes (64 KiB by default). */
const oneProcessBulk = async (
  env: Env,
  spec: { readonly name: string; readonly unit: string },
  bytes: number,
  piece: number | undefined,
  variants: ReadonlyArray<Variant>
): Promise<ReadonlyArray<Figure>> => {
  const { contexts, runtime } = env
  const pairOf = (v: Variant) =>
    v === "effect"
      ? { server: contexts.server.rsa, client: contexts.client }
      : { server: contexts.serverDetect, client: contexts.clientDetect }
  const warm = Math.max(bytes / 16, MiB)
  for (const v of variants) await untimed((m) => effectOneProcess(runtime, pairOf(v), warm, m, piece))
  await untimed((m) => rawOneProcess(warm, m, piece))
  return withTwin(
    env,
    spec,
    PER_MIB,
    variants,
    (v) => bulkRun(bytes, undefined, (m) => effectOneProcess(runtime, pairOf(v), bytes, m, piece)),
    () => bulkRun(bytes, undefined, (m) => rawOneProcess(bytes, m, piece))
  )
}

/** Bulk with the server in its process: one way, or both ways at once (`both`). */

const remoteBulk = async (env: Env, spec: { readonly name: string; readonly unit: string }, both: boolean) => {
  const { contexts, runtime, sizes } = env
  const variants = variantsOf(env, spec)
  if (variants.length === 0) return []
  const { effect, raw } = await env.servers()
  const detect = variants.includes("detect") ? await env.detectServer() : effect
  const target = (v: Variant) =>
    v === "effect"
      ? { client: contexts.client, server: effect }
      : { client: contexts.clientDetect, server: detect }
  const bytes = sizes.bulkBytes
  const moved = both ? 2 * bytes : bytes
  for (const v of variants) {
    await untimed((m) => effectRemote(runtime, target(v).client, target(v).server.ports.rsa, bytes / 16, both, m))
  }
  await untimed((m) => rawRemote(raw.ports.rsa, bytes / 16, both, m))
  return withTwin(
    env,
    spec,
    PER_MIB,
    variants,
    (v) => {
      const { client, server } = target(v)
      return bulkRun(moved, server.child, (m) => effectRemote(runtime, client, server.ports.rsa, bytes, both, m))
    },
    () => bulkRun(moved, raw.child, (m) => rawRemote(raw.ports.rsa, bytes, both, m))
  )
}

const HANDSHAKE_CASES = [
  [FIGURES.handshakesRsa, "rsa", "sequential"],
  [FIGURES.handshakesEc, "ec", "sequential"],
  [FIGURES.handshakesRsa32, "rsa", "concurrent"],
  [FIGURES.handshakesEc32, "ec", "concurrent"]
] as const

const groups: ReadonlyArray<Group> = [
  {
    id: "bulk",
    names: [FIGURES.bulkOneProcess.name, truncation(FIGURES.bulkOneProcess).name],
    run: (env) =>
      oneProcessBulk(
        env,
        FIGURES.bulkOneProcess,
        env.sizes.bulkBytes,
        undefined,
        variantsOf(env, FIGURES.bulkOneProcess)
      )
  },
  {
    id: "bulk1k",
    names: [FIGURES.bulkSmallWrites.name],
    run: (env) => oneProcessBulk(env, FIGURES.bulkSmallWrites, env.sizes.smallWriteBytes, SMALL_CHUNK, ["effect"])
  },
  {
    id: "remote",
    names: [FIGURES.bulkRemote.name, truncation(FIGURES.bulkRemote).name],
    run: (env) => remoteBulk(env, FIGURES.bulkRemote, false)
  },
  {
    id: "both",
    names: [FIGURES.bulkBoth.name, truncation(FIGURES.bulkBoth).name],
    run: (env) => remoteBulk(env, FIGURES.bulkBoth, true)
  },
  {
    id: "handshake",
    names: HANDSHAKE_CASES.flatMap(([spec]) => [spec.name, truncation(spec).name]),
    run: async (env) => {
      const { contexts, runtime, sizes } = env
      const cases = HANDSHAKE_CASES.map(([spec, kind, mode]) => ({ spec, kind, mode, variants: variantsOf(env, spec) }))
        .filter((c) => c.variants.length > 0)
      if (cases.length === 0) return []
      const { effect, raw } = await env.servers()
      const detect = cases.some((c) => c.variants.includes("detect")) ? await env.detectServer() : effect
      const client = (v: Variant) => (v === "effect" ? contexts.client13 : contexts.client13Detect)
      const server = (v: Variant) => (v === "effect" ? effect : detect)
      const port = (v: Variant, kind: CertKind) => server(v).ports[kind]
      // Warm-up: until V8 has compiled what a handshake runs, in both processes (about 2,000
      // handshakes here), half with each identity; the cold figure ("cold" group) shows the rest.
      const used = new Set(cases.flatMap((c) => c.variants))
      const warm = sizes.warmupHandshakes / 2
      const warmConcurrency = Math.min(WARMUP_CONCURRENCY, warm)
      log(`  warm-up: ${sizes.warmupHandshakes} handshakes per side (${[...used, "raw"].join(", ")})`)
      for (const kind of ["rsa", "ec"] as const) {
        for (const v of used) {
          await untimed((m) => effectHandshakes(runtime, client(v), port(v, kind), warm, warmConcurrency, m))
        }
        await untimed((m) => rawHandshakes(raw.ports[kind], warm, warmConcurrency, m))
      }
      const out: Array<Figure> = []
      for (const { kind, mode, spec, variants } of cases) {
        const count = mode === "sequential" ? sizes.handshakes : sizes.concurrentHandshakes
        const concurrency = mode === "sequential" ? 1 : sizes.concurrency
        const figures = await withTwin(
          env,
          spec,
          PER_HANDSHAKE,
          variants,
          (v) =>
            handshakeRun(
              count,
              server(v).child,
              (m) => effectHandshakes(runtime, client(v), port(v, kind), count, concurrency, m)
            ),
          () => handshakeRun(count, raw.child, (m) => rawHandshakes(raw.ports[kind], count, concurrency, m))
        )
        for (const f of figures) out.push(f)
      }
      return out
    }
  },
  {
    id: "cold",
    names: [FIGURES.handshakesCold.name],
    run: async ({ runs, sizes }) => {
      const [e, r] = await alternate(runs, [
        { run: () => coldHandshakes("effect", "rsa", sizes.coldHandshakes) },
        { run: () => coldHandshakes("raw", "rsa", sizes.coldHandshakes) }
      ])
      return [pair(FIGURES.handshakesCold, PER_HANDSHAKE, e!, r!)]
    }
  },
  {
    id: "resume",
    names: [
      FIGURES.handshakesResumed.name,
      FIGURES.handshakesResumedVsFull.name,
      FIGURES.handshakesRawResumedVsFull.name
    ],
    run: async ({ contexts, runs, runtime, servers, sizes }) => {
      // All four against the one effect-ssl server process: the effect-ssl client resuming with
      // its context's session cache, raw node:tls resuming with the session it kept, and both
      // making full handshakes, for the resumed/full ratios (raw node:tls's is the floor of the
      // "2x a full handshake" target).
      const { effect: server } = await servers()
      const port = server.ports.rsa
      const count = sizes.resumedHandshakes
      const warmConcurrency = Math.min(WARMUP_CONCURRENCY, sizes.warmupHandshakes)
      log(`  warm-up: ${sizes.warmupHandshakes} handshakes per subject`)
      await untimed((m) =>
        effectHandshakes(runtime, contexts.client13Resume, port, sizes.warmupHandshakes, warmConcurrency, m, {
          resumed: true
        })
      )
      await untimed((m) => rawHandshakes(port, sizes.warmupHandshakes, warmConcurrency, m, { resumed: true }))
      await untimed((m) =>
        effectHandshakes(runtime, contexts.client13, port, sizes.warmupHandshakes, warmConcurrency, m)
      )
      await untimed((m) => rawHandshakes(port, sizes.warmupHandshakes, warmConcurrency, m))
      const [resumed, raw, full, rawFull] = await alternate(runs, [
        {
          run: () =>
            handshakeRun(
              count,
              server.child,
              (m) => effectHandshakes(runtime, contexts.client13Resume, port, count, 1, m, { resumed: true })
            )
        },
        { run: () => handshakeRun(count, server.child, (m) => rawHandshakes(port, count, 1, m, { resumed: true })) },
        {
          run: () =>
            handshakeRun(count, server.child, (m) => effectHandshakes(runtime, contexts.client13, port, count, 1, m))
        },
        { run: () => handshakeRun(count, server.child, (m) => rawHandshakes(port, count, 1, m)) }
      ])
      return [
        pair(FIGURES.handshakesResumed, PER_HANDSHAKE, resumed!, raw!),
        pair(FIGURES.handshakesResumedVsFull, PER_HANDSHAKE, resumed!, full!),
        pair(FIGURES.handshakesRawResumedVsFull, PER_HANDSHAKE, raw!, rawFull!)
      ]
    }
  },
  {
    id: "memory",
    names: [FIGURES.memoryRss.name, FIGURES.memoryHeap.name],
    run: async ({ runs, sizes }) => {
      const samples = {
        effect: { rss: [] as Array<number>, heap: [] as Array<number> },
        raw: { rss: [] as Array<number>, heap: [] as Array<number> }
      }
      const once = async (impl: "effect" | "raw") => {
        const child = spawnScript("children/memory.ts", ["--impl", impl, "--count", String(sizes.idleConnections)], [
          "--expose-gc"
        ])
        const line = await child.firstLine
        const code = await child.exited
        if (code !== 0) throw new Error(`bench memory (${impl}): child exited with ${code}`)
        const result = JSON.parse(line) as { rss: number; heapUsed: number }
        samples[impl].rss.push(result.rss / 1024)
        samples[impl].heap.push(result.heapUsed / 1024)
      }
      // Memory does not depend on CPU time, so each run's two fresh processes run side by side.
      for (let i = 0; i < runs; i++) await Promise.all([once("effect"), once("raw")])
      const out = [
        figure(FIGURES.memoryRss.name, FIGURES.memoryRss.unit, samples.effect.rss, samples.raw.rss),
        figure(FIGURES.memoryHeap.name, FIGURES.memoryHeap.unit, samples.effect.heap, samples.raw.heap)
      ]
      for (const f of out) logFigure(f)
      return out
    }
  },
  {
    id: "interrupt",
    names: [FIGURES.interrupt.name, FIGURES.interruptFloor.name],
    run: async ({ contexts, runs, runtime, sizes }) => {
      // Warm-up, as before the handshake figures: an interrupt's path (the canceller, the fiber's
      // exit, the scope's unwinding) runs once per sample, and V8 compiles it only after hundreds.
      log(`  warm-up: ${sizes.interruptWarmup} interrupts per side`)
      await effectInterrupt(runtime, contexts.client, sizes.interruptWarmup)
      await floorInterrupt(sizes.interruptWarmup)
      await rawInterrupt(sizes.interruptWarmup)
      // Each run samples all three; both rows share the raw samples.
      const [e, f, r] = await alternate(runs, [
        { run: () => plain(effectInterrupt(runtime, contexts.client, sizes.interruptSamples)) },
        { run: () => plain(floorInterrupt(sizes.interruptSamples)) },
        { run: () => plain(rawInterrupt(sizes.interruptSamples)) }
      ])
      return [pair(FIGURES.interrupt, undefined, e!, r!), pair(FIGURES.interruptFloor, undefined, f!, r!)]
    }
  },
  {
    id: "startup",
    names: [FIGURES.cliStartup.name],
    run: async ({ runs, sizes }) => {
      await cliHelp(1)
      await nodeNothing(1)
      return [
        await compare(
          FIGURES.cliStartup,
          runs,
          () => cliHelp(sizes.startupSamples),
          () => nodeNothing(sizes.startupSamples)
        )
      ]
    }
  },
  {
    id: "sha1",
    names: [],
    run: async ({ runs, sizes }) => {
      const out = await benchSha1({ mib: sizes.sha1Mib, runs })
      for (const f of out) logFigure(f)
      return out
    }
  }
]

/**
 * Which figures --only asks for: a word that is a group id picks that group's figures; any other
 * word, the figures whose names contain it ("truncation": every "(truncation detection)" row).
 */
const wanted = (only: ReadonlyArray<string> | undefined) => (name: string): boolean =>
  only === undefined ||
  only.some((word) => {
    const group = groups.find((g) => g.id === word)
    return group !== undefined ? group.names.includes(name) : name.toLowerCase().includes(word)
  })

const selected = (group: Group, only: ReadonlyArray<string> | undefined) =>
  only === undefined || only.includes(group.id) || group.names.some(wanted(only))

// ---------------------------------------------------------------------------------------------
// The machine

const machine = (): ReadonlyArray<string> => {
  let cpuModel = cpus()[0]?.model ?? "unknown"
  try {
    const match = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))
    if (match !== null) cpuModel = match[1]!.trim()
  } catch {
    // not Linux: os.cpus() said it
  }
  let opensslCli = "not found"
  try {
    opensslCli = execFileSync("openssl", ["version"], { encoding: "utf8" }).trim()
  } catch {
    // no openssl command
  }
  let commit = "unknown"
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: benchDir, encoding: "utf8" }).trim()
    const dirty =
      execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: benchDir, encoding: "utf8" })
        .trim().length > 0
    commit = `${head}${dirty ? " (with uncommitted changes)" : ""}`
  } catch {
    // not a git checkout
  }
  return [
    `commit: ${commit}`,
    `cpus: ${availableParallelism()} (${cpuModel})`,
    `memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `node: ${process.version} (OpenSSL ${process.versions.openssl})`,
    `openssl command: ${opensslCli}`,
    `platform: ${process.platform} ${process.arch}`,
    `code: ${compiled ? "compiled by bench/build.mjs (esbuild)" : "TypeScript sources through tsx"}`,
    `load average at start: ${loadavg().map((x) => x.toFixed(2)).join(" ")}`
  ]
}

// ---------------------------------------------------------------------------------------------

const main = async () => {
  const options = parseOptions(process.argv.slice(2))
  const sizes = options.quick ? QUICK : FULL
  const chosen = groups.filter((g) => selected(g, options.only))
  if (chosen.length === 0) throw new Error(`--only ${options.only?.join(",")} matches no figure`)

  console.log(
    `effect-ssl bench${
      options.quick ? " (quick)" : ""
    }: ${options.runs} runs per subject, alternating effect-ssl and raw`
  )
  for (const line of machine()) console.log(`  ${line}`)
  console.log(
    `  sizes: bulk ${sizes.bulkBytes / MiB} MiB in 64 KiB writes, ${
      sizes.smallWriteBytes / MiB
    } MiB in 1 KiB writes; ` +
      `handshakes ${sizes.handshakes} sequential, ${sizes.concurrentHandshakes} from ${sizes.concurrency} clients, ` +
      `after ${sizes.warmupHandshakes} per side; ${sizes.coldHandshakes} cold, ${sizes.resumedHandshakes} resumed; ` +
      `${sizes.idleConnections} idle connections; ${sizes.interruptSamples} interrupts per run after ${sizes.interruptWarmup} per side; ` +
      `${sizes.startupSamples} CLI starts per run; sha1 ${sizes.sha1Mib} MiB`
  )

  const runtime = makeRuntime()
  const children: Array<Child> = []
  const startServer = async (impl: "effect" | "effect-detect" | "raw"): Promise<Server> => {
    const child = spawnScript("children/server.ts", ["--impl", impl], [], { ipc: true })
    children.push(child)
    return { ports: JSON.parse(await child.firstLine) as ServerPorts, child }
  }
  let serverProcesses: Promise<{ effect: Server; raw: Server }> | undefined
  const servers = () => {
    serverProcesses ??= (async () => {
      const [effect, raw] = await Promise.all([startServer("effect"), startServer("raw")])
      return { effect, raw }
    })()
    return serverProcesses
  }
  let detectProcess: Promise<Server> | undefined
  const detectServer = () => detectProcess ??= startServer("effect-detect")

  const figures: Array<Figure> = []
  try {
    const contexts = await runtime.runPromise(makeContexts)
    const env: Env = {
      runtime,
      sizes,
      runs: options.runs,
      contexts,
      servers,
      detectServer,
      want: wanted(options.only)
    }
    for (const group of chosen) {
      const start = performance.now()
      log(`${group.id}...`)
      for (const f of await group.run(env)) figures.push(f)
      log(`${group.id}: ${((performance.now() - start) / 1000).toFixed(1)} s`)
    }
  } finally {
    await Promise.all(children.map((child) => child.kill()))
    await runtime.dispose()
  }

  console.log("")
  console.log(formatTable(figures))
  if (figures.some((f) => f.cpu !== undefined)) {
    console.log("")
    console.log(
      "CPU time per unit of work over the same timed runs (user + system, all threads of the process; " +
        "client: the bench process, server: the server process, both ends: the bench process holding both):"
    )
    console.log(formatCpuTable(figures))
  }
  const checked = TARGETS.filter((t) => figures.some((f) => f.name === t.name))
  if (checked.length > 0 || figures.some((f) => f.name === FIGURES.cliStartup.name)) console.log("")
  for (const target of checked) {
    const f = figures.find((x) => x.name === target.name)
    if (f === undefined) continue
    const want = `${target.kind === "atLeast" ? ">=" : "<="} ${target.ratio}x`
    console.log(`target ${f.name}: ${want}, got ${f.ratio.toFixed(3)}x: ${meets(target, f.ratio) ? "met" : "MISSED"}`)
  }
  const startup = figures.find((f) => f.name === FIGURES.cliStartup.name)
  if (startup !== undefined) {
    const ms = startup.effect.median
    console.log(
      `target ${startup.name}: effect-ssl --help <= ${CLI_STARTUP_TARGET_MS} ms, got ${formatNumber(ms)} ms: ` +
        `${ms <= CLI_STARTUP_TARGET_MS ? "met" : "MISSED"}`
    )
  }

  console.log(`\nload average at end: ${loadavg().map((x) => x.toFixed(2)).join(" ")}`)
  mkdirSync(dirname(options.out), { recursive: true })
  writeFileSync(options.out, `${JSON.stringify(figures, null, 2)}\n`)
  console.log(`results written to ${options.out}`)
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error("bench failed:", error)
    process.exit(1)
  }
)
