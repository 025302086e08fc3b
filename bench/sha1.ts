/**
 * SHA-1 throughput: `Sha1.sha1` on a stream of 64 KiB chunks (native and portable paths) against
 * node:crypto's `createHash` over the same chunks and the `openssl dgst -sha1` command over a
 * file holding the same bytes.
 *
 *   npx tsx bench/sha1.ts [--mib 256] [--runs 5]
 *
 * `benchSha1` is what the root bench harness calls.
 */
import { Sha1 } from "@effect-ssl/sha1"
import { Effect, Option, Stream } from "effect"
import { spawn } from "node:child_process"
import { createHash, randomFillSync } from "node:crypto"
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join, resolve } from "node:path"

/** Throughput over the runs of one subject, in MB/s (10^6 bytes per second). */
export interface Stats {
  readonly median: number
  readonly min: number
  readonly max: number
}

/** One comparison: an effect-ssl path against a raw baseline; `ratio` = effect median / raw median. */
export interface Figure {
  readonly name: string
  readonly unit: "MB/s"
  readonly effect: Stats
  readonly raw: Stats
  readonly ratio: number
}

/** Chunk size of the hashed stream: what Node's and @effect/platform's file streams deliver. */
const CHUNK_SIZE = 64 * 1024

const stats = (samples: ReadonlyArray<number>): Stats => {
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! }
}

const generate = (bytes: number): ReadonlyArray<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  for (let offset = 0; offset < bytes; offset += CHUNK_SIZE) {
    chunks.push(randomFillSync(new Uint8Array(Math.min(CHUNK_SIZE, bytes - offset))))
  }
  return chunks
}

/** The chunks as a stream that hands out one chunk per pull, like a file or socket stream. */
const streamOf = (chunks: ReadonlyArray<Uint8Array>): Stream.Stream<Uint8Array> =>
  Stream.unfold(0, (i) => (i < chunks.length ? Option.some([chunks[i]!, i + 1] as const) : Option.none()))

const timeEffect = async (
  chunks: ReadonlyArray<Uint8Array>,
  implementation: Sha1.ImplementationName
): Promise<{ readonly ms: number; readonly digest: string }> => {
  const start = performance.now()
  const digest = await Effect.runPromise(Sha1.withImplementation(Sha1.sha1(streamOf(chunks)), implementation))
  return { ms: performance.now() - start, digest }
}

const timeCreateHash = (chunks: ReadonlyArray<Uint8Array>): { readonly ms: number; readonly digest: string } => {
  const start = performance.now()
  const hash = createHash("sha1")
  for (const chunk of chunks) hash.update(chunk)
  const digest = hash.digest("hex")
  return { ms: performance.now() - start, digest }
}

/** Runs `openssl dgst -sha1 file`, timing the process from spawn to exit. */
const timeOpenssl = (file: string): Promise<{ readonly ms: number; readonly digest: string }> =>
  new Promise((resolvePromise, reject) => {
    const start = performance.now()
    const child = spawn("openssl", ["dgst", "-sha1", "-r", file], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s))
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s))
    child.on("error", reject)
    child.on("close", (code) => {
      const ms = performance.now() - start
      if (code !== 0) reject(new Error(`openssl dgst -sha1 exited with ${code}: ${err.trim()}`))
      // -r prints "<hex> *<file>"
      else resolvePromise({ ms, digest: out.trim().split(/\s+/)[0]!.toLowerCase() })
    })
  })

const writeTempFile = (chunks: ReadonlyArray<Uint8Array>): { readonly file: string; readonly dir: string } => {
  const dir = mkdtempSync(join(tmpdir(), "effect-ssl-sha1-bench-"))
  const file = join(dir, "data.bin")
  const fd = openSync(file, "w")
  try {
    for (const chunk of chunks) writeSync(fd, chunk)
  } finally {
    closeSync(fd)
  }
  return { file, dir }
}

const opensslAvailable = async (): Promise<boolean> =>
  new Promise((resolvePromise) => {
    const child = spawn("openssl", ["version"], { stdio: "ignore" })
    child.on("error", () => resolvePromise(false))
    child.on("close", (code) => resolvePromise(code === 0))
  })

const check = (subject: string, digest: string, expected: string): void => {
  if (digest !== expected) throw new Error(`bench sha1: ${subject} gave ${digest}, expected ${expected}`)
}

/**
 * Measures SHA-1 throughput on `mib` MiB of random data, `runs` times per subject (after one
 * warm-up run on a smaller piece), and returns the comparisons as figures.
 */
export async function benchSha1(options: { mib: number; runs: number }): Promise<Array<Figure>> {
  const bytes = Math.round(options.mib * 1024 * 1024)
  const runs = Math.max(1, Math.floor(options.runs))
  const chunks = generate(bytes)
  const mbps = (ms: number) => bytes / 1e6 / (ms / 1000)

  const withOpenssl = await opensslAvailable()
  if (!withOpenssl) console.error("bench sha1: openssl not found on PATH, skipping the openssl dgst comparisons")
  const temp = withOpenssl ? writeTempFile(chunks) : undefined
  try {
    const expected = timeCreateHash(chunks).digest

    // Warm-up: get the JIT to compile the portable rounds and the stream loop.
    const warm = chunks.slice(0, Math.min(chunks.length, 128))
    for (const implementation of ["native", "portable"] as const) await timeEffect(warm, implementation)
    if (temp !== undefined) await timeOpenssl(temp.file)

    const samples = {
      native: [] as Array<number>,
      portable: [] as Array<number>,
      createHash: [] as Array<number>,
      openssl: [] as Array<number>
    }
    const subjects: Array<() => Promise<void>> = [
      async () => {
        const r = await timeEffect(chunks, "native")
        check("native path", r.digest, expected)
        samples.native.push(mbps(r.ms))
      },
      async () => {
        const r = await timeEffect(chunks, "portable")
        check("portable path", r.digest, expected)
        samples.portable.push(mbps(r.ms))
      },
      async () => {
        const r = timeCreateHash(chunks)
        check("createHash", r.digest, expected)
        samples.createHash.push(mbps(r.ms))
      },
      ...(temp === undefined ? [] : [async () => {
        const r = await timeOpenssl(temp.file)
        check("openssl dgst -sha1", r.digest, expected)
        samples.openssl.push(mbps(r.ms))
      }])
    ]
    // Interleave the subjects, rotating the order, so drift on a busy machine hits all alike.
    for (let run = 0; run < runs; run++) {
      for (let i = 0; i < subjects.length; i++) await subjects[(run + i) % subjects.length]!()
    }

    const figure = (name: string, effect: ReadonlyArray<number>, raw: ReadonlyArray<number>): Figure => {
      const e = stats(effect)
      const r = stats(raw)
      return { name, unit: "MB/s", effect: e, raw: r, ratio: e.median / r.median }
    }
    const figures = [
      figure("sha1 native path vs node:crypto createHash", samples.native, samples.createHash),
      figure("sha1 portable path vs node:crypto createHash", samples.portable, samples.createHash)
    ]
    if (temp !== undefined) {
      figures.push(
        figure("sha1 native path vs openssl dgst -sha1", samples.native, samples.openssl),
        figure("sha1 portable path vs openssl dgst -sha1", samples.portable, samples.openssl)
      )
    }
    return figures
  } finally {
    if (temp !== undefined) rmSync(temp.dir, { recursive: true, force: true })
  }
}

const formatStats = (s: Stats): string => `${s.median.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})`

/** The figures as a plain-text table. */
export const formatTable = (figures: ReadonlyArray<Figure>): string => {
  const rows = [
    ["comparison", "effect MB/s median (min-max)", "raw MB/s median (min-max)", "ratio"],
    ...figures.map((f) => [f.name, formatStats(f.effect), formatStats(f.raw), `${f.ratio.toFixed(2)}x`])
  ]
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "))
    .join("\n")
}

// Run as a script: `npx tsx bench/sha1.ts`, or its bundle bench/dist/sha1.js. Not
// import.meta.url: in the bundles that include this module (bench/dist/index.js) it is theirs.
const isMain = process.argv[1] !== undefined && /^sha1\.[jt]s$/.test(basename(resolve(process.argv[1])))

if (isMain) {
  const arg = (name: string, fallback: number): number => {
    const i = process.argv.indexOf(`--${name}`)
    const value = i >= 0 ? Number(process.argv[i + 1]) : fallback
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} wants a positive number`)
    return value
  }
  const mib = arg("mib", 256)
  const runs = arg("runs", 5)
  console.log(`sha1: ${mib} MiB of random data in ${CHUNK_SIZE / 1024} KiB chunks, ${runs} runs each`)
  console.log(formatTable(await benchSha1({ mib, runs })))
}
