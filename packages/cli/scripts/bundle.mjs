/**
 * Bundles the `effect-ssl` command into one JavaScript file, dist/effect-ssl.js: the published
 * package's bin. Everything it imports (Effect, @effect/cli, @effect-ssl/*) is inside, so it
 * starts without a TypeScript loader and without resolving hundreds of modules; a user installs
 * the package alone and has a working command.
 *
 * The bundle sits in dist/, one folder below the package, as TestCertificates.js does in
 * @effect-ssl/core: `TestCertificates.path` is made from import.meta.url ("../certs/test.pem"), so
 * the shipped test certificate is copied to certs/test.pem here.
 */
import { build } from "esbuild"
import { copyFileSync, mkdirSync } from "node:fs"
import { fileURLToPath } from "node:url"

const cliDir = fileURLToPath(new URL("..", import.meta.url))

mkdirSync(new URL("../certs/", import.meta.url), { recursive: true })
copyFileSync(
  new URL("../../core/certs/test.pem", import.meta.url),
  new URL("../certs/test.pem", import.meta.url)
)

await build({
  absWorkingDir: cliDir,
  entryPoints: ["src/bin.ts"],
  outfile: "dist/effect-ssl.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Workspace packages resolve to their TypeScript sources through their "exports".
  packages: "bundle",
  // Not minified and without a source map: the bundle stays readable in a stack trace, and
  // minifying saves no start-up time (measured: about 0.15 s for `--help` either way).
  logLevel: "warning",
  banner: {
    // Some dependencies still call require() for Node built-ins.
    js:
      "#!/usr/bin/env node\nimport { createRequire as __cliRequire } from 'node:module'; const require = __cliRequire(import.meta.url);"
  }
})
