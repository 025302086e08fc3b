/**
 * Real peers: the `openssl` command line (s_server, s_client, …) run in the fixtures folder, as
 * child processes that end with the test's scope.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import { fixture, fixturesDir } from "./Fixtures.js"

/**
 * The SHA-256 pin (base64) of the SubjectPublicKeyInfo of the first certificate in the fixture
 * `name`, as the `openssl` command computes it.
 */
export const opensslPin = (name: string): string =>
  ChildProcess.execFileSync("bash", [
    "-c",
    "openssl x509 -in \"$F\" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"
  ], { env: { ...process.env, F: fixture(name) } }).toString().trim()

/** A running `openssl` child process whose output the test can wait on. */
export interface OpensslPeer {
  readonly child: ChildProcess.ChildProcess
  /** stdout so far */
  readonly stdout: () => string
  /** stdout and stderr so far, interleaved as they arrived */
  readonly output: () => string
  /** Waits until stdout+stderr match `pattern`; fails if the process exits first. */
  readonly waitFor: (pattern: RegExp) => Effect.Effect<RegExpMatchArray, Error>
  readonly write: (text: string) => Effect.Effect<void>
  readonly endInput: Effect.Effect<void>
  /** Waits for the process to exit; its exit code, or the signal that ended it. */
  readonly exited: Effect.Effect<number | NodeJS.Signals>
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
}

/**
 * Spawns `openssl …args` in the fixtures folder; the process is killed (SIGKILL) and reaped when
 * the scope closes.
 */
export const spawnOpenssl = (args: ReadonlyArray<string>): Effect.Effect<OpensslPeer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = ChildProcess.spawn("openssl", args, { cwd: fixturesDir, stdio: ["pipe", "pipe", "pipe"] })
      let stdout = ""
      let output = ""
      let exit: number | NodeJS.Signals | undefined
      const listeners = new Set<() => void>()
      const notify = () => {
        for (const listener of Array.from(listeners)) listener()
      }
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("latin1")
        output += chunk.toString("latin1")
        notify()
      })
      child.stderr.on("data", (chunk: Buffer) => {
        output += chunk.toString("latin1")
        notify()
      })
      // stdin of a peer that has exited or closed it must not crash the test with EPIPE.
      child.stdin.on("error", () => {})
      child.on("error", (error) => {
        output += `\n[spawn error: ${error.message}]`
        exit ??= -1
        notify()
      })
      child.on("close", (code, signal) => {
        exit = code ?? signal ?? -1
        notify()
      })
      const waitFor = (pattern: RegExp): Effect.Effect<RegExpMatchArray, Error> =>
        Effect.async<RegExpMatchArray, Error>((resume) => {
          const check = () => {
            const match = output.match(pattern)
            if (match !== null) {
              listeners.delete(check)
              resume(Effect.succeed(match))
            } else if (exit !== undefined) {
              listeners.delete(check)
              resume(
                Effect.fail(new Error(`openssl ${args[0]} exited (${exit}) before printing ${pattern}:\n${output}`))
              )
            }
          }
          listeners.add(check)
          check()
          return Effect.sync(() => listeners.delete(check))
        }).pipe(
          // A guard with a readable message instead of the test runner's bare timeout.
          Effect.timeoutFail({
            duration: "10 seconds",
            onTimeout: () => new Error(`openssl ${args[0]} never printed ${pattern}:\n${output}`)
          })
        )
      const exited = Effect.async<number | NodeJS.Signals>((resume) => {
        const check = () => {
          if (exit !== undefined) {
            listeners.delete(check)
            resume(Effect.succeed(exit))
          }
        }
        listeners.add(check)
        check()
        return Effect.sync(() => listeners.delete(check))
      })
      const peer: OpensslPeer = {
        child,
        stdout: () => stdout,
        output: () => output,
        waitFor,
        write: (text) =>
          Effect.async<void>((resume) => {
            child.stdin.write(text, () => resume(Effect.void))
          }),
        endInput: Effect.sync(() => void child.stdin.end()),
        exited,
        kill: (signal = "SIGKILL") => Effect.sync(() => void child.kill(signal))
      }
      return peer
    }),
    (peer) =>
      Effect.suspend(() => {
        if (peer.child.exitCode === null && peer.child.signalCode === null) peer.child.kill("SIGKILL")
        return peer.exited
      })
  )

/**
 * The arguments of an `openssl s_server` that accepts on `accept` ("host:port") and serves the
 * fixture leaf `cert` with its key and the fixture intermediate (a chain a client that trusts
 * root-ca.pem verifies). The files are named by absolute path: any working directory will do.
 */
export const sServerArgs = (accept: string, cert = "server.pem", key = "server.key"): Array<string> => [
  "s_server",
  "-accept",
  accept,
  "-cert",
  fixture(cert),
  "-cert_chain",
  fixture("intermediate-ca.pem"),
  "-key",
  fixture(key)
]

/** What `openssl s_server -accept 127.0.0.1:0` prints once it listens: the port the kernel chose. */
export const sServerAccepting = /^ACCEPT 127\.0\.0\.1:(\d+)$/m

/**
 * `openssl s_server` on 127.0.0.1 with the fixture server chain (plus `args`), on a port the
 * kernel picks, ready once it printed it on its ACCEPT line.
 */
export const sServer = (
  args: ReadonlyArray<string>
): Effect.Effect<{ readonly port: number; readonly peer: OpensslPeer }, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const peer = yield* spawnOpenssl([...sServerArgs("127.0.0.1:0"), ...args])
    const [, port] = yield* peer.waitFor(sServerAccepting)
    return { port: Number(port), peer }
  })
