/**
 * The figures' names (stable across runs and sizes, for comparing results.json across commits),
 * their units and the issue's targets.
 */
export const FIGURES = {
  bulkOneProcess: { name: "bulk one way, one process", unit: "MB/s" },
  bulkRemote: { name: "bulk one way, server in 2nd process", unit: "MB/s" },
  bulkBoth: { name: "bulk both ways at once, server in 2nd process (sum)", unit: "MB/s" },
  handshakesRsa: { name: "handshakes sequential, RSA-2048, TLS 1.3", unit: "handshakes/s" },
  handshakesEc: { name: "handshakes sequential, ECDSA P-256, TLS 1.3", unit: "handshakes/s" },
  handshakesRsa32: { name: "handshakes 32 concurrent clients, RSA-2048, TLS 1.3", unit: "handshakes/s" },
  handshakesEc32: { name: "handshakes 32 concurrent clients, ECDSA P-256, TLS 1.3", unit: "handshakes/s" },
  memoryRss: { name: "memory per idle connection (both ends), RSS", unit: "KiB" },
  memoryHeap: { name: "memory per idle connection (both ends), V8 heap", unit: "KiB" },
  interrupt: { name: "Fiber.interrupt of pending connect -> socket released", unit: "µs" },
  cliStartup: { name: "effect-ssl --help start-up (bundled CLI) vs node -e 0", unit: "ms" }
} as const

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
  { name: FIGURES.handshakesRsa.name, kind: "atLeast", ratio: 0.95 },
  { name: FIGURES.handshakesEc.name, kind: "atLeast", ratio: 0.95 },
  { name: FIGURES.handshakesRsa32.name, kind: "atLeast", ratio: 0.95, note: "the issue's \"and with 32 concurrent clients\", read as the same target" },
  { name: FIGURES.handshakesEc32.name, kind: "atLeast", ratio: 0.95, note: "as above" },
  { name: FIGURES.memoryRss.name, kind: "atMost", ratio: 1.2 },
  { name: FIGURES.memoryHeap.name, kind: "atMost", ratio: 1.2 }
]

/** An absolute target, not a ratio: the published command's `--help` starts in under this (ms). */
export const CLI_STARTUP_TARGET_MS = 300

export const meets = (target: Target, ratio: number): boolean =>
  target.kind === "atLeast" ? ratio >= target.ratio : ratio <= target.ratio
