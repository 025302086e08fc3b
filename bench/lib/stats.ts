/**
 * Figures, their statistics and the printed table.
 */

/** One subject's samples, summarized. */
export interface Stats {
  readonly median: number
  readonly min: number
  readonly max: number
}

/**
 * CPU time (user + system, all threads) one process spent per unit of work, both subjects;
 * `process` is "client", "server" or "both ends" (client and server in one process).
 */
export interface CpuFigure {
  readonly process: string
  readonly unit: string
  readonly effect: Stats
  readonly raw: Stats
  readonly ratio: number
}

/** One comparison as written to results.json; `ratio` = effect median / raw median. */
export interface Figure {
  readonly name: string
  readonly unit: string
  readonly effect: Stats
  readonly raw: Stats
  readonly ratio: number
  /** CPU per unit of work over the same timed part, by process (figures that measure it). */
  readonly cpu?: ReadonlyArray<CpuFigure>
  /** Each run's value, in run order: the samples the statistics summarize. */
  readonly runs?: {
    readonly effect: ReadonlyArray<number>
    readonly raw: ReadonlyArray<number>
  }
  /**
   * The server process's mark-compacts in each run, in run order (figures with a server process):
   * a run that meets a storm of them is slower for it (BENCHMARKS.md, session 13).
   */
  readonly serverMarkCompacts?: {
    readonly effect: ReadonlyArray<number>
    readonly raw: ReadonlyArray<number>
  }
}

export const stats = (samples: ReadonlyArray<number>): Stats => {
  if (samples.length === 0) throw new Error("stats: no samples")
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! }
}

export const median = (samples: ReadonlyArray<number>): number => stats(samples).median

export const figure = (
  name: string,
  unit: string,
  effect: ReadonlyArray<number>,
  raw: ReadonlyArray<number>
): Figure => {
  const e = stats(effect)
  const r = stats(raw)
  return { name, unit, effect: e, raw: r, ratio: e.median / r.median }
}

/** The same figure with CPU time per unit of work of each process, from the runs' samples. */
export const withCpu = (
  f: Figure,
  unit: string,
  effect: ReadonlyArray<Readonly<Record<string, number>>>,
  raw: ReadonlyArray<Readonly<Record<string, number>>>
): Figure => {
  const processes = Object.keys(effect[0] ?? {}).filter((p) => raw.every((r) => r[p] !== undefined))
  if (processes.length === 0) return f
  return {
    ...f,
    cpu: processes.map((process) => {
      const e = stats(effect.map((s) => s[process]!))
      const r = stats(raw.map((s) => s[process]!))
      return { process, unit, effect: e, raw: r, ratio: e.median / r.median }
    })
  }
}

/** A number with about three significant digits, no exponent. */
export const formatNumber = (n: number): string => {
  const abs = Math.abs(n)
  if (abs >= 100) return n.toFixed(0)
  if (abs >= 10) return n.toFixed(1)
  if (abs >= 1) return n.toFixed(2)
  return n.toPrecision(3)
}

const formatStats = (s: Stats): string => `${formatNumber(s.median)} [${formatNumber(s.min)}–${formatNumber(s.max)}]`

/** The figures as a plain-text table: figure, unit, effect, raw, ratio. */
export const formatTable = (figures: ReadonlyArray<Figure>): string => {
  const rows = [
    ["figure", "unit", "effect-ssl median [min–max]", "raw node:tls median [min–max]", "effect/raw"],
    ...figures.map((f) => [f.name, f.unit, formatStats(f.effect), formatStats(f.raw), `${f.ratio.toFixed(3)}x`])
  ]
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const line = (r: ReadonlyArray<string>) =>
    r.map((cell, c) => (c <= 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ").trimEnd()
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n")
}

/** The CPU figures as a plain-text table: figure and process, unit, effect, raw, ratio. */
export const formatCpuTable = (figures: ReadonlyArray<Figure>): string =>
  formatTable(
    figures.flatMap((f) =>
      (f.cpu ?? []).map((c) => ({
        name: `${f.name} [${c.process}]`,
        unit: c.unit,
        effect: c.effect,
        raw: c.raw,
        ratio: c.ratio
      }))
    )
  )

/** The figures as a Markdown table (for BENCHMARKS.md). */
export const formatMarkdown = (figures: ReadonlyArray<Figure>): string =>
  [
    "| figure | unit | effect-ssl median [min–max] | raw median [min–max] | effect/raw |",
    "|---|---|---:|---:|---:|",
    ...figures.map((f) =>
      `| ${f.name} | ${f.unit} | ${formatStats(f.effect)} | ${formatStats(f.raw)} | ${f.ratio.toFixed(3)}x |`
    )
  ].join("\n")
