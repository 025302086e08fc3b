/**
 * The figures' names (stable across runs and sizes, for comparing results.json across commits),
 * their units and the issue's targets.
 */
export const FIGURES = {
  bulkOneProcess: { name: "bulk one way, one process", unit: "MB/s" },
  bulkSmallWrites: { name: "bulk one way in 1 KiB writes, one process", unit: "MB/s" },
  bulkRemote: { name: "bulk one way, server in 2nd process", unit: "MB/s" },
  bulkBoth: { name: "bulk both ways at once, server in 2nd process (sum)", unit: "MB/s" },
  handshakesRsa: { name: "handshakes sequential, RSA-2048, TLS 1.3", unit: "handshakes/s" },
  handshakesEc: { name: "handshakes sequential, ECDSA P-256, TLS 1.3", unit: "handshakes/s" },
  handshakesRsa32: { name: "handshakes 32 concurrent clients, RSA-2048, TLS 1.3", unit: "handshakes/s" },
  handshakesEc32: { name: "handshakes 32 concurrent clients, ECDSA P-256, TLS 1.3", unit: "handshakes/s" },
  handshakesCold: { name: "handshakes sequential, RSA-2048, TLS 1.3, cold (fresh processes)", unit: "handshakes/s" },
  handshakesResumed: { name: "handshakes sequential, RSA-2048, TLS 1.3, resumed", unit: "handshakes/s" },
  handshakesResumedVsFull: {
    name: "handshakes sequential, RSA-2048, TLS 1.3: effect-ssl resumed vs effect-ssl full",
    unit: "handshakes/s"
  },
  handshakesRawResumedVsFull: {
    name: "handshakes sequential, RSA-2048, TLS 1.3: raw node:tls resumed vs raw node:tls full (floor)",
    unit: "handshakes/s"
  },
  memoryRss: { name: "memory per idle connection (both ends), RSS", unit: "KiB" },
  memoryHeap: { name: "memory per idle connection (both ends), V8 heap", unit: "KiB" },
  interrupt: { name: "Fiber.interrupt of pending connect -> socket released", unit: "µs" },
  interruptFloor: {
    name: "Fiber.interrupt of pending connect -> socket released: floor (node:tls in one Effect.async)",
    unit: "µs"
  },
  cliStartup: { name: "effect-ssl --help start-up (bundled CLI) vs node -e 0", unit: "ms" }
} as const

/** The figures measured again with truncation detection on in the effect-ssl contexts (issue 12). */
export const TRUNCATION_FIGURES = [
  FIGURES.bulkOneProcess,
  FIGURES.bulkRemote,
  FIGURES.bulkBoth,
  FIGURES.handshakesRsa,
  FIGURES.handshakesEc,
  FIGURES.handshakesRsa32,
  FIGURES.handshakesEc32
] as const

/**
 * A figure's twin with `SslContext.setDetectTruncation(ctx, true)` on the effect-ssl contexts of
 * both ends, against the same raw node:tls runs (raw node:tls has no such setting).
 */
export const truncation = (spec: { readonly name: string; readonly unit: string }) => ({
  name: `${spec.name} (truncation detection)`,
  unit: spec.unit
})

/** Every figure name a full run (or --quick) prints, besides the SHA-1 ones. */
export const ALL_FIGURE_NAMES: ReadonlyArray<string> = [
  ...Object.values(FIGURES).map((f) => f.name),
  ...TRUNCATION_FIGURES.map((f) => truncation(f).name)
]

/** The SHA-1 comparisons bench/sha1.ts always makes (the openssl dgst ones need `openssl`). */
export const SHA1_FIGURES = [
  "sha1 native path vs node:crypto createHash",
  "sha1 portable path vs node:crypto createHash"
] as const

export interface Target {
  readonly name: string
  /** "atLeast": effect/raw must be >= ratio (more is better); "atMost": <= ratio (less is better) */
  readonly kind: "atLeast" | "atMost"
  readonly ratio: number
  readonly note?: string
}

export const TARGETS: ReadonlyArray<Target> = [
  { name: FIGURES.bulkOneProcess.name, kind: "atLeast", ratio: 0.95 },
  { name: FIGURES.bulkRemote.name, kind: "atLeast", ratio: 0.95, note: "issue 12" },
  { name: FIGURES.bulkBoth.name, kind: "atLeast", ratio: 0.95, note: "issue 12" },
  { name: FIGURES.bulkSmallWrites.name, kind: "atLeast", ratio: 1.0, note: "issue 12" },
  { name: FIGURES.handshakesRsa.name, kind: "atLeast", ratio: 0.95 },
  { name: FIGURES.handshakesEc.name, kind: "atLeast", ratio: 0.95 },
  {
    name: FIGURES.handshakesRsa32.name,
    kind: "atLeast",
    ratio: 0.95,
    note: "the issue's \"and with 32 concurrent clients\", read as the same target"
  },
  { name: FIGURES.handshakesEc32.name, kind: "atLeast", ratio: 0.95, note: "as above" },
  { name: FIGURES.handshakesResumed.name, kind: "atLeast", ratio: 0.95, note: "issue 14" },
  { name: FIGURES.handshakesResumedVsFull.name, kind: "atLeast", ratio: 2, note: "issue 14" },
  { name: FIGURES.memoryRss.name, kind: "atMost", ratio: 1.2 },
  { name: FIGURES.memoryHeap.name, kind: "atMost", ratio: 3, note: "issue 12 (issue 6 asked 1.2x)" },
  { name: FIGURES.interrupt.name, kind: "atMost", ratio: 2, note: "issue 12" }
]

/** An absolute target, not a ratio: the published command's `--help` starts in under this (ms). */
export const CLI_STARTUP_TARGET_MS = 300

export const meets = (target: Target, ratio: number): boolean =>
  target.kind === "atLeast" ? ratio >= target.ratio : ratio <= target.ratio
