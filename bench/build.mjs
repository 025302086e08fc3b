/**
 * Compiles the bench to plain JavaScript in bench/dist (esbuild, one bundle per entry point), as
 * a user's build would ship effect-ssl. Running the TypeScript sources through tsx instead would
 * measure tsx: its transform keeps function names by wrapping every named function, which costs
 * heap per closure and time in hot paths.
 *
 * Bundles sit one folder below bench/, as the sources they come from do, so that paths made from
 * import.meta.url (the fixtures, bench/ itself) stay right.
 */
import { build } from "esbuild"
import { fileURLToPath } from "node:url"

const benchDir = fileURLToPath(new URL(".", import.meta.url))

/** Entry points, by the name of their bundle in bench/dist. */
export const entries = {
  index: "index.ts",
  profile: "profile.ts",
  load: "load.ts",
  sha1: "sha1.ts",
  "children-memory": "children/memory.ts",
  "children-server": "children/server.ts",
  "children-client": "children/client.ts"
}

await build({
  absWorkingDir: benchDir,
  entryPoints: Object.entries(entries).map(([out, source]) => ({ in: source, out })),
  outdir: "dist",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Packages resolve to their TypeScript sources through their "exports"; bundle them all.
  packages: "bundle",
  logLevel: "warning",
  // Some dependencies still call require() for Node built-ins.
  banner: {
    js:
      "import { createRequire as __benchRequire } from 'node:module'; const require = __benchRequire(import.meta.url);"
  }
})

// The start-up figure times the published `effect-ssl` command: its bundle, made the way
// `pnpm pack` makes it.
await import("../packages/cli/scripts/bundle.mjs")
