/**
 * pnpm bench: effect-ssl against raw node:tls (and sha1 against node:crypto and openssl), side by
 * side in one run.
 *
 *   pnpm bench                       every figure, full sizes; writes bench/results.json
 *   pnpm bench --quick               small sizes, for a fast look (writes bench/results.local.json)
 *   pnpm bench --only handshake      only some figures: a comma-separated list of group ids
 *                                    (bulk, remote, both, handshake, memory, interrupt, startup,
 *                                    sha1) or
 *                                    words of figure names (writes bench/results.local.json)
 *   pnpm bench --out PATH            where to write the results
 *   pnpm bench --runs N              runs per subject (at least 5; default 5)
 *
 * For every figure the effect-ssl run and the raw node:tls run alternate (the order flips from
 * one run to the next), and the table shows each side's median with min and max over the runs,
 * and the ratio of the medians (effect / raw).
 */
import type { SslContext } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { availableParallelism, cpus, loadavg, totalmem } from "node:os"
import { dirname, join, resolve } from "node:path"
import { effectOneProcess, effectRemote, rawOneProcess, rawRemote } from "./figures/bulk.js"
import { effectHandshakes, rawHandshakes } from "./figures/handshakes.js"
import { effectInterrupt, rawInterrupt } from "./figures/interrupt.js"
import { cliHelp, nodeNothing } from "./figures/startup.js"
import { benchDir, type CertKind, type Child, compiled, spawnScript } from "./lib/common.js"
import { clientContext, makeRuntime, type Runtime, serverContext } from "./lib/effect.js"
import { CLI_STARTUP_TARGET_MS, FIGURES, meets, TARGETS } from "./lib/names.js"
import type { ServerPorts } from "./lib/protocol.js"
import { type Figure, figure, formatNumber, formatTable } from "./lib/stats.js"
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
  readonly handshakes: number
  readonly concurrentHandshakes: number
  readonly concurrency: number
  readonly idleConnections: number
  readonly interruptSamples: number
  readonly startupSamples: number
  readonly sha1Mib: number
}

const MiB = 1024 * 1024

const FULL: Sizes = {
  bulkBytes: 512 * MiB,
  handshakes: 300,
  concurrentHandshakes: 1024,
  concurrency: 32,
  idleConnections: 1000,
  interruptSamples: 51,
  startupSamples: 11,
  sha1Mib: 256
}

const QUICK: Sizes = {
  bulkBytes: 4 * MiB,
  handshakes: 5,
  concurrentHandshakes: 32,
  concurrency: 32,
  idleConnections: 20,
  interruptSamples: 5,
  startupSamples: 3,
  sha1Mib: 4
}

// ---------------------------------------------------------------------------------------------
// Running

const log = (line: string) => process.stderr.write(`${line}\n`)

/** Runs both subjects `runs` times each, alternating (and flipping who goes first each run). */
const compare = async (
  spec: { readonly name: string; readonly unit: string },
  runs: number,
  effect: () => Promise<number>,
  raw: () => Promise<number>
): Promise<Figure> => {
  const e: Array<number> = []
  const r: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? [["effect", effect, e], ["raw", raw, r]] as const : [["raw", raw, r], ["effect", effect, e]] as const
    // No forced GC between runs: a full collection shrinks the heap, and the next run (the
    // allocation-heavier side most) then pays for growing it back, which distorted the figures.
    for (const [, run, samples] of order) samples.push(await run())
  }
  const result = figure(spec.name, spec.unit, e, r)
  log(`  ${spec.name}: effect ${formatNumber(result.effect.median)}, raw ${formatNumber(result.raw.median)} ${spec.unit} (${result.ratio.toFixed(3)}x)`)
  return result
}

interface Env {
  readonly runtime: Runtime
  readonly sizes: Sizes
  readonly runs: number
  readonly contexts: {
    readonly server: Record<CertKind, SslContext.ServerContext>
    readonly client: SslContext.ClientContext
    readonly client13: SslContext.ClientContext
  }
  /** The server processes (started on first use). */
  readonly servers: () => Promise<{ readonly effect: ServerPorts; readonly raw: ServerPorts }>
}

interface Group {
  readonly id: string
  readonly names: ReadonlyArray<string>
  readonly run: (env: Env) => Promise<ReadonlyArray<Figure>>
}

const groups: ReadonlyArray<Group> = [
  {
    id: "bulk",
    names: [FIGURES.bulkOneProcess.name],
    run: async ({ contexts, runs, runtime, sizes }) => {
      const both = { server: contexts.server.rsa, client: contexts.client }
      // warm-up
      await effectOneProcess(runtime, both, sizes.bulkBytes / 16)
      await rawOneProcess(sizes.bulkBytes / 16)
      return [
        await compare(
          FIGURES.bulkOneProcess,
          runs,
          () => effectOneProcess(runtime, both, sizes.bulkBytes),
          () => rawOneProcess(sizes.bulkBytes)
        )
      ]
    }
  },
  {
    id: "remote",
    names: [FIGURES.bulkRemote.name],
    run: async ({ contexts, runs, runtime, servers, sizes }) => {
      const ports = await servers()
      await effectRemote(runtime, contexts.client, ports.effect.rsa, sizes.bulkBytes / 16, false)
      await rawRemote(ports.raw.rsa, sizes.bulkBytes / 16, false)
      return [
        await compare(
          FIGURES.bulkRemote,
          runs,
          () => effectRemote(runtime, contexts.client, ports.effect.rsa, sizes.bulkBytes, false),
          () => rawRemote(ports.raw.rsa, sizes.bulkBytes, false)
        )
      ]
    }
  },
  {
    id: "both",
    names: [FIGURES.bulkBoth.name],
    run: async ({ contexts, runs, runtime, servers, sizes }) => {
      const ports = await servers()
      await effectRemote(runtime, contexts.client, ports.effect.rsa, sizes.bulkBytes / 16, true)
      await rawRemote(ports.raw.rsa, sizes.bulkBytes / 16, true)
      return [
        await compare(
          FIGURES.bulkBoth,
          runs,
          () => effectRemote(runtime, contexts.client, ports.effect.rsa, sizes.bulkBytes, true),
          () => rawRemote(ports.raw.rsa, sizes.bulkBytes, true)
        )
      ]
    }
  },
  {
    id: "handshake",
    names: [FIGURES.handshakesRsa.name, FIGURES.handshakesEc.name, FIGURES.handshakesRsa32.name, FIGURES.handshakesEc32.name],
    run: async ({ contexts, runs, runtime, servers, sizes }) => {
      const ports = await servers()
      const out: Array<Figure> = []
      const cases = [
        [FIGURES.handshakesRsa, "rsa", sizes.handshakes, 1],
        [FIGURES.handshakesEc, "ec", sizes.handshakes, 1],
        [FIGURES.handshakesRsa32, "rsa", sizes.concurrentHandshakes, sizes.concurrency],
        [FIGURES.handshakesEc32, "ec", sizes.concurrentHandshakes, sizes.concurrency]
      ] as const
      for (const [spec, kind, count, concurrency] of cases) {
        const warm = Math.min(count, 16)
        await effectHandshakes(runtime, contexts.client13, ports.effect[kind], warm, Math.min(concurrency, warm))
        await rawHandshakes(ports.raw[kind], warm, Math.min(concurrency, warm))
        out.push(
          await compare(
            spec,
            runs,
            () => effectHandshakes(runtime, contexts.client13, ports.effect[kind], count, concurrency),
            () => rawHandshakes(ports.raw[kind], count, concurrency)
          )
        )
      }
      return out
    }
  },
  {
    id: "memory",
    names: [FIGURES.memoryRss.name, FIGURES.memoryHeap.name],
    run: async ({ runs, sizes }) => {
      const samples = { effect: { rss: [] as Array<number>, heap: [] as Array<number> }, raw: { rss: [] as Array<number>, heap: [] as Array<number> } }
      const once = async (impl: "effect" | "raw") => {
        const child = spawnScript("children/memory.ts", ["--impl", impl, "--count", String(sizes.idleConnections)], ["--expose-gc"])
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
      for (const f of out) log(`  ${f.name}: effect ${formatNumber(f.effect.median)}, raw ${formatNumber(f.raw.median)} ${f.unit} (${f.ratio.toFixed(3)}x)`)
      return out
    }
  },
  {
    id: "interrupt",
    names: [FIGURES.interrupt.name],
    run: async ({ contexts, runs, runtime, sizes }) => {
      await effectInterrupt(runtime, contexts.client, 3)
      await rawInterrupt(3)
      return [
        await compare(
          FIGURES.interrupt,
          runs,
          () => effectInterrupt(runtime, contexts.client, sizes.interruptSamples),
          () => rawInterrupt(sizes.interruptSamples)
        )
      ]
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
      for (const f of out) log(`  ${f.name}: effect ${formatNumber(f.effect.median)}, raw ${formatNumber(f.raw.median)} ${f.unit} (${f.ratio.toFixed(3)}x)`)
      return out
    }
  }
]

/** A word of --only picks the group of that id, or else every group with a figure name containing it. */
const selected = (group: Group, only: ReadonlyArray<string> | undefined) =>
  only === undefined ||
  only.some((word) =>
    groups.some((g) => g.id === word)
      ? group.id === word
      : group.names.some((name) => name.toLowerCase().includes(word))
  )

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
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: benchDir, encoding: "utf8" })
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

  console.log(`effect-ssl bench${options.quick ? " (quick)" : ""}: ${options.runs} runs per subject, alternating effect-ssl and raw`)
  for (const line of machine()) console.log(`  ${line}`)
  console.log(
    `  sizes: bulk ${sizes.bulkBytes / MiB} MiB in 64 KiB writes; handshakes ${sizes.handshakes} sequential, ` +
      `${sizes.concurrentHandshakes} from ${sizes.concurrency} clients; ${sizes.idleConnections} idle connections; ` +
      `${sizes.interruptSamples} interrupts per run; ${sizes.startupSamples} CLI starts per run; sha1 ${sizes.sha1Mib} MiB`
  )

  const runtime = makeRuntime()
  const children: Array<Child> = []
  let serverPorts: Promise<{ effect: ServerPorts; raw: ServerPorts }> | undefined
  const servers = () => {
    serverPorts ??= (async () => {
      const start = async (impl: "effect" | "raw") => {
        const child = spawnScript("children/server.ts", ["--impl", impl])
        children.push(child)
        return JSON.parse(await child.firstLine) as ServerPorts
      }
      const [effect, raw] = await Promise.all([start("effect"), start("raw")])
      return { effect, raw }
    })()
    return serverPorts
  }

  const figures: Array<Figure> = []
  try {
    const contexts = await runtime.runPromise(Effect.all({
      server: Effect.all({ rsa: serverContext("rsa"), ec: serverContext("ec") }),
      client: clientContext("auto"),
      client13: clientContext("tls1.3")
    }))
    const env: Env = { runtime, sizes, runs: options.runs, contexts, servers }
    for (const group of chosen) {
      const start = performance.now()
      log(`${group.id}...`)
      figures.push(...(await group.run(env)))
      log(`${group.id}: ${((performance.now() - start) / 1000).toFixed(1)} s`)
    }
  } finally {
    await Promise.all(children.map((child) => child.kill()))
    await runtime.dispose()
  }

  console.log("")
  console.log(formatTable(figures))
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
