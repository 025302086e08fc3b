/**
 * Smoke test of `pnpm bench`: the harness, compiled as `pnpm bench` compiles it, runs in quick
 * mode (a few MiB, a few handshakes, 100 idle connections) in a child process, as
 * `pnpm bench --quick` would, and every figure comes out with positive finite numbers, the bulk
 * and handshake figures with CPU per unit of work of each process. No timing assertions: this
 * only keeps the bench from rotting.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { ALL_FIGURE_NAMES, FIGURES, SHA1_FIGURES, truncation } from "../lib/names.js"
import type { Figure, Stats } from "../lib/stats.js"

const benchDir = fileURLToPath(new URL("..", import.meta.url))

const isPositive = (n: unknown): boolean => typeof n === "number" && Number.isFinite(n) && n > 0

const checkStats = (name: string, side: string, s: Stats) => {
  for (const key of ["median", "min", "max"] as const) {
    expect(isPositive(s[key]), `${name}: ${side}.${key} = ${s[key]}`).toBe(true)
  }
  expect(s.min, `${name}: ${side} min <= median`).toBeLessThanOrEqual(s.median)
  expect(s.median, `${name}: ${side} median <= max`).toBeLessThanOrEqual(s.max)
}

describe("pnpm bench --quick", () => {
  it("measures every figure and writes results.json", { timeout: 120_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), "effect-ssl-bench-"))
    const out = join(dir, "results.json")
    try {
      // What `pnpm bench` runs: the bundle bench/build.mjs makes.
      const built = spawnSync(process.execPath, ["build.mjs"], { cwd: benchDir, encoding: "utf8", timeout: 60_000 })
      expect(built.status, `build.mjs exited with ${built.status ?? built.signal}:\n${built.stderr}`).toBe(0)
      const run = spawnSync(process.execPath, ["dist/index.js", "--quick", "--out", out], {
        cwd: benchDir,
        encoding: "utf8",
        timeout: 110_000
      })
      expect(run.status, `bench exited with ${run.status ?? run.signal}:\n${run.stdout}\n${run.stderr}`).toBe(0)
      expect(existsSync(out)).toBe(true)
      // The committed results of a full run are left alone.
      expect(run.stdout).toContain(out)

      const figures = JSON.parse(readFileSync(out, "utf8")) as ReadonlyArray<Figure>
      const names = figures.map((f) => f.name)
      for (const expected of [...ALL_FIGURE_NAMES, ...SHA1_FIGURES]) {
        expect(names).toContain(expected)
      }
      expect(new Set(names).size).toBe(names.length)
      for (const f of figures) {
        expect(typeof f.unit === "string" && f.unit.length > 0, `${f.name}: unit`).toBe(true)
        checkStats(f.name, "effect", f.effect)
        checkStats(f.name, "raw", f.raw)
        expect(isPositive(f.ratio), `${f.name}: ratio = ${f.ratio}`).toBe(true)
        expect(f.ratio).toBeCloseTo(f.effect.median / f.raw.median, 9)
        for (const c of f.cpu ?? []) {
          const what = `${f.name} [cpu ${c.process}]`
          expect(typeof c.unit === "string" && c.unit.length > 0, `${what}: unit`).toBe(true)
          checkStats(what, "effect", c.effect)
          checkStats(what, "raw", c.raw)
          expect(isPositive(c.ratio), `${what}: ratio = ${c.ratio}`).toBe(true)
        }
      }
      // CPU per unit of work: of both processes where the server is a process of its own, of the
      // one process holding both ends otherwise.
      const processes = (name: string) => figures.find((f) => f.name === name)?.cpu?.map((c) => c.process)
      const twoProcesses = [
        FIGURES.bulkRemote,
        FIGURES.bulkBoth,
        FIGURES.handshakesRsa,
        FIGURES.handshakesEc,
        FIGURES.handshakesRsa32,
        FIGURES.handshakesEc32,
        FIGURES.handshakesCold,
        FIGURES.handshakesResumed
      ]
      for (const spec of twoProcesses) {
        expect(processes(spec.name), spec.name).toEqual(["client", "server"])
      }
      for (const spec of [FIGURES.bulkRemote, FIGURES.handshakesRsa32]) {
        expect(processes(truncation(spec).name), truncation(spec).name).toEqual(["client", "server"])
      }
      for (const spec of [FIGURES.bulkOneProcess, FIGURES.bulkSmallWrites]) {
        expect(processes(spec.name), spec.name).toEqual(["both ends"])
      }
      // The server process's mark-compacts, run by run, beside every figure that has one.
      const compacts = (name: string) => figures.find((f) => f.name === name)?.serverMarkCompacts
      for (const spec of [FIGURES.bulkRemote, FIGURES.bulkBoth, FIGURES.handshakesRsa, FIGURES.handshakesResumed]) {
        const counts = compacts(spec.name)
        expect(counts, spec.name).toBeDefined()
        for (const side of [counts!.effect, counts!.raw]) {
          expect(side.length, spec.name).toBeGreaterThanOrEqual(5)
          for (const n of side) expect(Number.isInteger(n) && n >= 0, `${spec.name}: ${n}`).toBe(true)
        }
      }
      expect(compacts(FIGURES.bulkOneProcess.name)).toBeUndefined()
      // Each run's value, which the statistics summarize.
      for (const f of figures) {
        if (f.runs === undefined) continue
        expect(f.runs.effect.length, f.name).toBeGreaterThanOrEqual(5)
        expect(Math.min(...f.runs.effect), f.name).toBe(f.effect.min)
        expect(Math.max(...f.runs.raw), f.name).toBe(f.raw.max)
      }
      expect(figures.find((f) => f.name === FIGURES.bulkRemote.name)?.runs).toBeDefined()
      // The table is printed with one row per figure.
      for (const f of figures) expect(run.stdout).toContain(f.name)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
