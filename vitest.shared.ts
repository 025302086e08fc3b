import { defineConfig } from "vitest/config"

// Sockets and child processes make tests I/O-bound, not CPU-bound: a generous timeout
// guards against a shared, noisy machine without hiding hangs for long.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    include: ["test/**/*.test.ts"],
    sequence: { concurrent: false }
  }
})
