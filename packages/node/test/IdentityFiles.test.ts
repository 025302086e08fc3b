/**
 * Files where certificates and keys are expected, and what each loader of SslContext does with
 * them: a FIFO (whose open waits for a writer in one of libuv's four threads, out of reach of any
 * interruption), a device that never ends (/dev/zero), a file too large to be a certificate are
 * refused before they are opened; text that is not PEM, a directory, a file that vanishes or turns
 * into a directory between two loads are refused when read. Each with a typed error naming the
 * path; a failed load changes nothing, and the process's file reads and DNS lookups go on working.
 */
import { Ssl, SslContext } from "@effect-ssl/core"
import * as FileSystem from "@effect/platform/FileSystem"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ChildProcess from "node:child_process"
import * as Dns from "node:dns"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture, fixturesDir } from "../../core/test/helpers/Fixtures.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-ssl-files-"))
const fifo = Path.join(dir, "chain.pem")
ChildProcess.execFileSync("mkfifo", [fifo])

afterAll(() => {
  // Were an open of the FIFO still waiting (a load that opened it), a writer lets it go.
  const release = Fs.openSync(fifo, Fs.constants.O_RDWR | Fs.constants.O_NONBLOCK)
  Fs.closeSync(release)
  Fs.rmSync(dir, { recursive: true, force: true })
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/** A load that has not failed within 2 seconds is stuck (it never would, on a FIFO or /dev/zero). */
const failure = <E, R>(load: Effect.Effect<void, E, R>) =>
  load.pipe(Effect.flip, Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("the load is stuck") }))

/** Every file-taking loader of SslContext, on `path`. */
const everyLoader = (path: string) =>
  Effect.gen(function*() {
    const server = yield* SslContext.makeServer()
    const client = yield* SslContext.makeClient()
    return [
      ["CertificateLoadError", SslContext.loadCertificateChain(server, path)],
      ["PrivateKeyLoadError", SslContext.loadPrivateKey(server, path)],
      ["PrivateKeyLoadError", SslContext.loadPrivateKey(server, path, { asn1: true, passphrase: "secret" })],
      ["CertificateLoadError", SslContext.loadVerifyRootCertificates(client, path)],
      ["CertificateLoadError", SslContext.loadSuggestedCertificateAuthorities(server, path)],
      ["CertificateLoadError", SslContext.loadVerifySource(client, path)],
      ["CertificateLoadError", SslContext.setIdentity(server, { chain: path, key: fixture("server.key") })],
      ["PrivateKeyLoadError", SslContext.setIdentity(server, { chain: fixture("server-chain.pem"), key: path })],
      ["PrivateKeyLoadError", SslContext.loadPkcs12(server, path, { passphrase: "secret" })]
    ] as const
  })

const expectRefused = (error: unknown, tag: string, reason: string, path: string) => {
  expect(error).toMatchObject({ _tag: tag, reason, path })
  expect((error as Error).message).toContain(path)
}

/** Reads a fixture and looks up a name: both run in libuv's thread pool. */
const threadPoolWorks = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const reads = yield* Effect.all(Array.from({ length: 8 }, () => fs.readFile(fixture("server.pem"))), {
    concurrency: "unbounded"
  })
  expect(reads.every((bytes) => bytes.length > 0)).toBe(true)
  const address = yield* Effect.async<string, Error>((resume) => {
    Dns.lookup("localhost", (error, address) => resume(error ? Effect.fail(error) : Effect.succeed(address)))
  })
  expect(address).toMatch(/^(127\.0\.0\.1|::1)$/)
}).pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("libuv's thread pool is taken") }))

describe("paths that are not regular files", () => {
  it.live("a FIFO: every loader fails NotRegularFile at once, naming it; file reads and DNS lookups still work", () =>
    Effect.gen(function*() {
      // more loads than libuv has threads
      for (let round = 0; round < 2; round++) {
        for (const [tag, load] of yield* everyLoader(fifo)) {
          expectRefused(yield* failure(load), tag, "NotRegularFile", fifo)
        }
      }
      yield* threadPoolWorks
    }).pipe(Effect.provide(TestLayer)))

  it.live("/dev/zero and /dev/null: NotRegularFile, nothing read", () =>
    Effect.gen(function*() {
      for (const device of ["/dev/zero", "/dev/null"]) {
        for (const [tag, load] of yield* everyLoader(device)) {
          const error = yield* failure(load)
          expectRefused(error, tag, "NotRegularFile", device)
          expect((error as Error).message).toContain("not a regular file")
        }
      }
      yield* threadPoolWorks
    }).pipe(Effect.provide(TestLayer)))

  it.live("a symbolic link is followed: to a FIFO it is refused, to a certificate it loads", () =>
    Effect.gen(function*() {
      const toFifo = Path.join(dir, "link-to-fifo.pem")
      const toChain = Path.join(dir, "link-to-chain.pem")
      Fs.symlinkSync(fifo, toFifo)
      Fs.symlinkSync(fixture("server-chain.pem"), toChain)
      const server = yield* SslContext.makeServer()
      expectRefused(
        yield* failure(SslContext.loadCertificateChain(server, toFifo)),
        "CertificateLoadError",
        "NotRegularFile",
        toFifo
      )
      yield* SslContext.loadCertificateChain(server, toChain)
      expect(server.state.chain).toHaveLength(2)
    }).pipe(Effect.provide(TestLayer)))

  it.live("a FIFO in a hashed trust directory is skipped; the certificates beside it load; `try` ignores one", () =>
    Effect.gen(function*() {
      const hashed = Path.join(dir, "hashed")
      Fs.mkdirSync(hashed)
      ChildProcess.execFileSync("mkfifo", [Path.join(hashed, "0badcafe.0")])
      Fs.copyFileSync(fixture("root-ca.pem"), Path.join(hashed, "deadbeef.0"))
      const client = yield* SslContext.makeClient()
      yield* SslContext.loadVerifySource(client, { directory: hashed }).pipe(Effect.timeout("2 seconds"))
      expect(client.state.roots).toHaveLength(1)
      yield* SslContext.loadVerifySource(client, fifo, { try: true }).pipe(Effect.timeout("2 seconds"))
      expect(client.state.roots).toHaveLength(1)
      yield* threadPoolWorks
    }).pipe(Effect.provide(TestLayer)))
})

describe("file sizes", () => {
  it.live("a file over 16 MiB: TooLarge, naming it, for every loader; 16 MiB exactly is still read", () =>
    Effect.gen(function*() {
      const large = Path.join(dir, "large.pem")
      // sparse: no disk is spent on it
      Fs.closeSync(Fs.openSync(large, "w"))
      Fs.truncateSync(large, 16 * 1024 * 1024 + 1)
      for (const [tag, load] of yield* everyLoader(large)) {
        const error = yield* failure(load)
        expectRefused(error, tag, "TooLarge", large)
        expect((error as Error).message).toContain("16 MiB")
      }
      Fs.truncateSync(large, 16 * 1024 * 1024)
      const server = yield* SslContext.makeServer()
      expectRefused(
        yield* failure(SslContext.loadCertificateChain(server, large)),
        "CertificateLoadError",
        "Malformed",
        large
      )
    }).pipe(Effect.provide(TestLayer)))
})

describe("files that are not certificates or keys, or go away", () => {
  /** A private copy of some fixtures, in a folder removed with the scope. */
  const scratch = Effect.acquireRelease(
    Effect.sync(() => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-ssl-bad-input-"))
      for (const name of ["server-chain.pem", "server.key", "root-ca.pem", "garbage.pem"]) {
        Fs.copyFileSync(fixture(name), Path.join(dir, name))
      }
      return dir
    }),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

  it.scopedLive("non-PEM text where roots, suggested CAs or an identity are expected: Malformed, naming the file", () =>
    Effect.gen(function*() {
      const garbage = fixture("garbage.pem")
      const server = yield* serverContext()
      const roots = yield* Effect.flip(SslContext.loadVerifyRootCertificates(server, garbage))
      expect(roots).toMatchObject({ _tag: "CertificateLoadError", reason: "Malformed", path: garbage })
      expect(roots.message).toContain(garbage)
      const suggested = yield* Effect.flip(SslContext.loadSuggestedCertificateAuthorities(server, garbage))
      expect(suggested).toMatchObject({ _tag: "CertificateLoadError", reason: "Malformed", path: garbage })
      const chain = yield* Effect.flip(SslContext.setIdentity(server, { chain: garbage, key: fixture("server.key") }))
      expect(chain).toMatchObject({ _tag: "CertificateLoadError", reason: "Malformed", path: garbage })
      expect(chain.message).toContain(garbage)
      const key = yield* Effect.flip(
        SslContext.setIdentity(server, { chain: fixture("server-chain.pem"), key: garbage })
      )
      expect(key).toMatchObject({ _tag: "PrivateKeyLoadError", reason: "Malformed", path: garbage })
      expect(key.message).toContain(garbage)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a directory where roots, suggested CAs or an identity are expected: IsDirectory, naming it", () =>
    Effect.gen(function*() {
      const dir = fixturesDir.replace(/\/$/, "")
      const server = yield* serverContext()
      for (
        const error of [
          yield* Effect.flip(SslContext.loadVerifyRootCertificates(server, dir)),
          yield* Effect.flip(SslContext.loadSuggestedCertificateAuthorities(server, dir)),
          yield* Effect.flip(SslContext.setIdentity(server, { chain: dir, key: fixture("server.key") })),
          yield* Effect.flip(SslContext.setIdentity(server, { chain: fixture("server-chain.pem"), key: dir }))
        ]
      ) {
        expect(error).toMatchObject({ reason: "IsDirectory", path: dir })
        expect(error.message).toContain(dir)
        expect(error.message).toContain("directory")
      }
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a file that vanishes between two loads: the second fails NotFound; what the first loaded stays and serves", () =>
    Effect.gen(function*() {
      const dir = yield* scratch
      const chain = Path.join(dir, "server-chain.pem")
      const key = Path.join(dir, "server.key")
      const root = Path.join(dir, "root-ca.pem")
      const server = yield* SslContext.makeServer()
      const client = yield* SslContext.makeClient()
      yield* SslContext.loadCertificateChain(server, chain)
      yield* SslContext.loadPrivateKey(server, key)
      yield* SslContext.loadVerifyRootCertificates(client, root)
      yield* SslContext.setIdentity(server, { chain, key })

      for (const file of [chain, key, root]) Fs.rmSync(file)

      const results = [
        yield* Effect.flip(SslContext.loadCertificateChain(server, chain)),
        yield* Effect.flip(SslContext.loadPrivateKey(server, key)),
        yield* Effect.flip(SslContext.loadVerifyRootCertificates(client, root)),
        yield* Effect.flip(SslContext.loadSuggestedCertificateAuthorities(server, root)),
        yield* Effect.flip(SslContext.setIdentity(server, { chain, key }))
      ]
      const paths = [chain, key, root, root, chain]
      results.forEach((error, i) => {
        expect(error).toMatchObject({ reason: "NotFound", path: paths[i] })
        expect(error.message).toContain(paths[i])
        expect(error.message).toContain("does not exist")
      })
      expect(results.map((e) => e._tag)).toEqual([
        "CertificateLoadError",
        "PrivateKeyLoadError",
        "CertificateLoadError",
        "CertificateLoadError",
        "CertificateLoadError"
      ])

      // the failed loads changed nothing: the identity and roots loaded before still work
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const accepted = yield* Effect.fork(
        Effect.scoped(
          Effect.flatMap(
            Ssl.accept(listener),
            (conn) => Effect.zipRight(conn.output.write("still here\n"), conn.output.close)
          )
        )
      )
      const conn = yield* Ssl.connect("localhost", listener.address.port, client)
      expect((yield* conn.session).verified).toBe(true)
      expect(yield* conn.input.readLine).toEqual(Option.some("still here"))
      yield* accepted.await
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a file replaced by a directory between two loads: IsDirectory", () =>
    Effect.gen(function*() {
      const dir = yield* scratch
      const chain = Path.join(dir, "server-chain.pem")
      const server = yield* SslContext.makeServer()
      yield* SslContext.loadCertificateChain(server, chain)
      Fs.rmSync(chain)
      Fs.mkdirSync(chain)
      const error = yield* Effect.flip(SslContext.loadCertificateChain(server, chain))
      expect(error).toMatchObject({ _tag: "CertificateLoadError", reason: "IsDirectory", path: chain })
      expect(error.message).toContain(chain)
    }).pipe(Effect.provide(TestLayer)))
})
