/**
 * What users get: every package packed as it would be published (`pnpm pack`, which builds it
 * first and rewrites `exports`, `main`, `types` and `bin` from `publishConfig`), installed with npm
 * into an empty project outside the workspace, and used there the way a user would, with plain
 * `node` and no TypeScript anywhere:
 *
 * - test/install/roundtrip.mjs imports @effect-ssl/core, /node and /sha1, makes a verified TLS
 *   round trip with `openssl s_server -rev` and hashes a file with `Sha1`;
 * - the installed `effect-ssl` (the bundled bin) prints its help and hashes files as `sha1sum`
 *   does.
 *
 * Effect and its platform packages come from the npm registry at the versions the workspace pins
 * (npm's cache makes later runs fast).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { sServerAccepting, sServerArgs } from "../../core/test/helpers/Openssl.js"

const root = fileURLToPath(new URL("../../../", import.meta.url))
const roundtrip = fileURLToPath(new URL("install/roundtrip.mjs", import.meta.url))

/** The versions of the workspace's lockfile, so the project installs what the tests ran with. */
const registryPackages = [
  "effect@3.22.4",
  "@effect/platform@0.97.2",
  "@effect/platform-node@0.108.2",
  // @effect/platform-node's peers; pinned so npm does not pick newer ones than the workspace's
  "@effect/cluster@0.60.2",
  "@effect/rpc@0.76.2",
  "@effect/sql@0.52.1",
  "@effect/workflow@0.19.1"
]

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv; readonly timeout: number }
): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeout, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resolve({ code, stdout, stderr })
      }
    )
  })

const explain = (what: string, result: Run) =>
  `${what} exited with ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`

/** pnpm as this test was started (`pnpm test` sets npm_execpath), else the repository's pinned one. */
const pnpm = (): { readonly command: string; readonly args: ReadonlyArray<string> } => {
  const execpath = process.env.npm_execpath
  if (execpath !== undefined && /pnpm\.c?js$/.test(execpath)) return { command: process.execPath, args: [execpath] }
  const manifest = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as { packageManager: string }
  return { command: "npx", args: ["-y", manifest.packageManager] }
}

/**
 * The environment for npm in the temporary project: without the npm_* variables that pnpm sets
 * for scripts (npm would read npm_config_* as its own settings).
 */
const npmEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)))

let dir = ""
let project = ""
const children = new Set<ChildProcess>()

beforeAll(async () => {
  dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-ssl-install-"))
  const tarballs = Path.join(dir, "tarballs")
  project = Path.join(dir, "project")
  Fs.mkdirSync(project)

  const { args, command } = pnpm()
  const packed = await run(
    command,
    // One package at a time: packing builds each (prepack), and two tsc -b runs would write the
    // same outputs at once.
    [
      ...args,
      "--recursive",
      "--workspace-concurrency=1",
      "--filter",
      "./packages/*",
      "pack",
      "--pack-destination",
      tarballs
    ],
    { cwd: root, timeout: 120_000 }
  )
  expect(packed.code, explain("pnpm pack", packed)).toBe(0)
  const files = Fs.readdirSync(tarballs).filter((name) => name.endsWith(".tgz")).sort()
  const expected = ["cli", "core", "node", "sha1"].map((name) => {
    const manifest = JSON.parse(Fs.readFileSync(Path.join(root, "packages", name, "package.json"), "utf8"))
    return `effect-ssl-${name}-${manifest.version}.tgz`
  })
  expect(files).toEqual(expected)

  Fs.writeFileSync(
    Path.join(project, "package.json"),
    JSON.stringify({ name: "effect-ssl-install-test", private: true, type: "module" }, null, 2)
  )
  Fs.copyFileSync(fixture("root-ca.pem"), Path.join(project, "root-ca.pem"))
  Fs.copyFileSync(roundtrip, Path.join(project, "roundtrip.mjs"))

  const installed = await run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      "--loglevel=error",
      ...files.map((file) => Path.join(tarballs, file)),
      ...registryPackages
    ],
    { cwd: project, env: npmEnv(), timeout: 180_000 }
  )
  expect(installed.code, explain("npm install", installed)).toBe(0)
}, 300_000)

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL")
  if (dir !== "") Fs.rmSync(dir, { recursive: true, force: true })
})

/** A 300 KB file of varied bytes, and what sha1sum says of it. */
const dataFile = async (): Promise<{ readonly file: string; readonly sha1sum: string }> => {
  const file = Path.join(project, "data.bin")
  const bytes = Buffer.alloc(300_000)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + (i >> 8)) & 0xff
  Fs.writeFileSync(file, bytes)
  const sum = await run("sha1sum", ["data.bin"], { cwd: project, timeout: 30_000 })
  expect(sum.code, explain("sha1sum", sum)).toBe(0)
  return { file, sha1sum: sum.stdout }
}

/**
 * `openssl s_server -rev` (each line sent back reversed) on a port the kernel picks; it prints the
 * port on its ACCEPT line and serves one connection.
 */
const sServer = (): Promise<{ readonly port: number; readonly exited: Promise<number | null> }> =>
  new Promise((resolve, reject) => {
    const child = spawn("openssl", [...sServerArgs("127.0.0.1:0"), "-rev", "-naccept", "1"], {
      cwd: project,
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.add(child)
    const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)))
    let output = ""
    const onData = (text: string) => {
      output += text
      const match = sServerAccepting.exec(output)
      if (match !== null) resolve({ port: Number(match[1]), exited })
    }
    child.stdout.setEncoding("utf8").on("data", onData)
    child.stderr.setEncoding("utf8").on("data", onData)
    child.on("error", reject)
    void exited.then((code) => reject(new Error(`openssl s_server exited with ${code} before listening:\n${output}`)))
  })

describe("the packed packages, installed with npm outside the workspace", () => {
  it("ship JavaScript, declarations and source maps, and no tests, fixtures or private keys besides test.pem", () => {
    const core = Path.join(project, "node_modules", "@effect-ssl", "core")
    const manifest = JSON.parse(Fs.readFileSync(Path.join(core, "package.json"), "utf8"))
    expect(manifest.exports["."]).toEqual({ types: "./dist/index.d.ts", default: "./dist/index.js" })
    expect(manifest.peerDependencies.effect).toMatch(/^\^3\./)
    const shipped = ["dist/index.js", "dist/index.d.ts", "dist/index.js.map", "LICENSE", "README.md", "certs/test.pem"]
    for (const file of shipped) expect(Fs.existsSync(Path.join(core, file)), file).toBe(true)
    for (const name of ["core", "node", "sha1", "cli"]) {
      const files = Fs.readdirSync(Path.join(project, "node_modules", "@effect-ssl", name), { recursive: true })
        .map(String)
      expect(files.filter((file) => /(^|\/)test(\/|$)|\.key$|fixtures/.test(file)), name).toEqual([])
      expect(files, name).toContain("LICENSE")
    }
  })

  it("a plain node program makes a verified TLS round trip with openssl s_server and hashes a file with Sha1", async () => {
    const { file, sha1sum } = await dataFile()
    const server = await sServer()
    const result = await run(process.execPath, ["roundtrip.mjs", String(server.port), file], {
      cwd: project,
      timeout: 60_000
    })
    expect(result.code, explain("node roundtrip.mjs", result)).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({
      verified: true,
      protocol: "TLSv1.3",
      answer: "dellatsni ,lss-tceffe",
      sha1: sha1sum.split(" ")[0]
    })
    expect(await server.exited).toBe(0)
  })

  it("the installed effect-ssl command prints its help and hashes files as sha1sum does", async () => {
    const bin = Path.join(project, "node_modules", ".bin", "effect-ssl")
    // The bin is the bundle: it runs without a TypeScript loader and without its peers.
    const target = Fs.realpathSync(bin)
    expect(target).toBe(Path.join(project, "node_modules", "@effect-ssl", "cli", "dist", "effect-ssl.js"))

    const help = await run(bin, ["--help"], { cwd: project, timeout: 30_000 })
    expect(help.code, explain("effect-ssl --help", help)).toBe(0)
    for (const command of ["demo", "connect", "serve", "sha1"]) expect(help.stdout).toContain(command)

    const { sha1sum } = await dataFile()
    const sums = await run(bin, ["sha1", "data.bin", "package.json"], { cwd: project, timeout: 30_000 })
    const expected = await run("sha1sum", ["data.bin", "package.json"], { cwd: project, timeout: 30_000 })
    expect(sums.code, explain("effect-ssl sha1", sums)).toBe(0)
    expect(sums.stdout).toBe(expected.stdout)
    expect(sums.stdout.startsWith(sha1sum)).toBe(true)
  })
})
