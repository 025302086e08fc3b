/**
 * Bundles the `effect-ssl` command into one JavaScript file, dist/effect-ssl.js: the published
 * package's bin. Everything it imports (Effect, @effect/cli, @effect-ssl/*) is inside, so it
 * starts without a TypeScript loader and without resolving hundreds of modules; a user installs
 * the package alone and has a working command.
 *
 * The bundle sits in dist/, one folder below the package, as TestCertificates.js does in
 * @effect-ssl/core: `TestCertificates.path` is made from import.meta.url ("../certs/test.pem"), so
 * the shipped test certificate is copied to certs/test.pem here.
 *
 * Both files are written whole and renamed into place: `pnpm pack` (the install test) and
 * `pnpm bench` may bundle at the same time, and neither may see a half-written file.
 */
import { build } from "esbuild"
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const cliDir = fileURLToPath(new URL("..", import.meta.url))
const unique = `${process.pid}-${Date.now()}`

const writeWhole = (target, write) => {
  const temporary = `${target}.${unique}.tmp`
  write(temporary)
  renameSync(temporary, target)
}

mkdirSync(new URL("../certs/", import.meta.url), { recursive: true })
writeWhole(
  fileURLToPath(new URL("../certs/test.pem", import.meta.url)),
  (temporary) => copyFileSync(new URL("../../core/certs/test.pem", import.meta.url), temporary)
)

const result = await build({
  absWorkingDir: cliDir,
  entryPoints: ["src/bin.ts"],
  outfile: "dist/effect-ssl.js",
  write: false,
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

mkdirSync(new URL("../dist/", import.meta.url), { recursive: true })
for (const file of result.outputFiles) {
  writeWhole(file.path, (temporary) => writeFileSync(temporary, file.contents, { mode: 0o755 }))
}
