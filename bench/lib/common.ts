/**
 * What every figure shares, without Effect (so that raw children start fast): the fixtures, the
 * raw node:tls options made from them, the bytes written, and child processes.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomFillSync } from "node:crypto"
import { readFileSync } from "node:fs"
import * as Tls from "node:tls"
import { fileURLToPath } from "node:url"

export const benchDir: string = fileURLToPath(new URL("..", import.meta.url))

export const fixture = (name: string): string =>
  fileURLToPath(new URL(`../../packages/core/test/fixtures/${name}`, import.meta.url))

/** The server identities the figures use. */
export type CertKind = "rsa" | "ec"

export const identities: Record<CertKind, { readonly chain: string; readonly key: string; readonly label: string }> = {
  rsa: { chain: fixture("server-chain.pem"), key: fixture("server.key"), label: "RSA-2048" },
  ec: { chain: fixture("server-ec-chain.pem"), key: fixture("server-ec.key"), label: "ECDSA P-256" }
}

export const rootCa: string = fixture("root-ca.pem")

/** The host name clients connect to and verify; it resolves to 127.0.0.1, where servers listen. */
export const HOST = "localhost"
export const LISTEN_HOST = "127.0.0.1"

/** Application write size of the bulk figures. */
export const CHUNK = 64 * 1024

/** 64 KiB of random bytes, written over and over (random so no layer can compress it). */
export const chunk: Buffer = randomFillSync(Buffer.alloc(CHUNK))

// ---------------------------------------------------------------------------------------------
// raw node:tls, from the same files

export const rawServerOptions = (kind: CertKind): Tls.TlsOptions => ({
  cert: readFileSync(identities[kind].chain),
  key: readFileSync(identities[kind].key)
})

/**
 * Client options trusting the fixture root CA. The secure context is made once here and shared by
 * every connection made with these options, as effect-ssl shares one per client context (passing
 * `ca` to each tls.connect would parse it and build a new context per connection).
 */
export const rawClientOptions = (tls13 = false): Tls.ConnectionOptions => ({
  secureContext: Tls.createSecureContext({
    ca: readFileSync(rootCa),
    ...(tls13 ? { minVersion: "TLSv1.3" as const, maxVersion: "TLSv1.3" as const } : {})
  })
})

/** Writes `bytes` bytes in CHUNK-sized writes, waiting for 'drain' whenever write says so. */
export const rawWriteCount = (socket: Tls.TLSSocket, bytes: number, done: () => void): void => {
  let left = bytes
  const go = () => {
    while (left > 0) {
      const n = Math.min(CHUNK, left)
      left -= n
      if (!socket.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
        socket.once("drain", go)
        return
      }
    }
    done()
  }
  go()
}

// ---------------------------------------------------------------------------------------------
// Child processes

export interface Child {
  readonly child: ChildProcess
  /** The first line the child prints on stdout. */
  readonly firstLine: Promise<string>
  /** Everything the child printed on stdout. */
  readonly stdout: () => string
  readonly exited: Promise<number | NodeJS.Signals>
  readonly kill: () => Promise<void>
}

/** Whether this is the bundle bench/build.mjs made (`pnpm bench`) rather than the sources under tsx. */
export const compiled: boolean = import.meta.url.endsWith(".js")

/**
 * Runs a script of bench/ (`children/server.ts`, say) in a fresh Node: its bundle in bench/dist
 * when this runs compiled, else its source through tsx. Extra Node flags for children (say
 * `--cpu-prof`) come from the BENCH_CHILD_NODE_FLAGS environment variable.
 */
export const spawnScript = (script: string, args: ReadonlyArray<string>, nodeFlags: ReadonlyArray<string> = []): Child => {
  const extra = (process.env["BENCH_CHILD_NODE_FLAGS"] ?? "").split(/\s+/).filter((s) => s.length > 0)
  const entry = compiled ? ["dist/" + script.replace(/\.ts$/, ".js").replaceAll("/", "-")] : ["--import", "tsx", script]
  const child = spawn(process.execPath, [...nodeFlags, ...extra, ...entry, ...args], {
    cwd: benchDir,
    stdio: ["ignore", "pipe", "inherit"]
  })
  let out = ""
  let lineSeen = false
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (s: string) => {
      out += s
      const nl = out.indexOf("\n")
      if (!lineSeen && nl >= 0) {
        lineSeen = true
        resolve(out.slice(0, nl))
      }
    })
    child.on("error", reject)
    child.on("close", (code, signal) => {
      if (!lineSeen) reject(new Error(`${script} ${args.join(" ")} exited (${code ?? signal}) without output`))
    })
  })
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.on("close", (code, signal) => resolve(code ?? signal ?? -1))
  })
  return {
    child,
    firstLine,
    stdout: () => out,
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
