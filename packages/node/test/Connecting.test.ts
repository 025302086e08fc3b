/**
 * Bad input through the API: each a typed error whose message names the argument (or the path),
 * and none of them touches the network. What the core tests and Errors.test.ts already try
 * (pipe capacities, read counts, protocol names for contexts, missing files, directories and
 * garbage for chains and keys, most out-of-range ports) is not repeated here.
 */
import { Port, type Protocol, Ssl, SslContext, SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture, fixturesDir } from "../../core/test/helpers/Fixtures.js"
import { silentServer } from "../../core/test/helpers/RawPeers.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/** Checks an InvalidArgumentError for `argument`, its message naming the argument and the value. */
const expectInvalid = (error: unknown, argument: string, shown: string) => {
  expect(error).toBeInstanceOf(SslError.InvalidArgumentError)
  const invalid = error as SslError.InvalidArgumentError
  expect(invalid.argument).toBe(argument)
  expect(invalid.message).toContain(argument)
  expect(invalid.message).toContain(shown)
}

describe("ports, backlogs and host names", () => {
  it.scopedLive("listen and tcpListen: 65536, NaN, Infinity and -0.5 are InvalidArgumentError port", () =>
    Effect.gen(function*() {
      const context = yield* serverContext()
      for (const port of [65536, Number.NaN, Number.POSITIVE_INFINITY, -0.5]) {
        expectInvalid(yield* Effect.flip(Ssl.listen(port, { context })), "port", String(port))
        expectInvalid(yield* Effect.flip(NodeSsl.tcpListen(port)), "port", String(port))
      }
      // and the range is said: 0 (any free port) to 65535 for a listener
      const error = yield* Effect.flip(Ssl.listen(65536, { context }))
      expect(error.message).toContain("0 to 65535")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("connect and tcpConnect: Infinity, and 0 (only a listener may ask for any port)", () =>
    Effect.gen(function*() {
      for (const port of [Number.POSITIVE_INFINITY, 0]) {
        const error = yield* Effect.flip(Ssl.connect("localhost", port, yield* clientContext()))
        expectInvalid(error, "port", String(port))
        expect(error.message).toContain("1 to 65535")
        expectInvalid(yield* Effect.flip(NodeSsl.tcpConnect("localhost", port)), "port", String(port))
      }
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a negative or fractional backlog: InvalidArgumentError backlog", () =>
    Effect.gen(function*() {
      const context = yield* serverContext()
      for (const backlog of [-1, 1.5, Number.NaN]) {
        expectInvalid(yield* Effect.flip(Ssl.listen(0, { context, backlog })), "backlog", String(backlog))
        expectInvalid(yield* Effect.flip(NodeSsl.tcpListen(0, { backlog })), "backlog", String(backlog))
      }
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("an empty host name, or one with spaces or slashes: InvalidArgumentError hostname", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      for (const hostname of ["", "local host", "localhost/path", "a\0b", "x".repeat(254)]) {
        const error = yield* Effect.flip(Ssl.connect(hostname, silent.port, yield* clientContext()))
        expectInvalid(error, "hostname", JSON.stringify(hostname))
        expectInvalid(yield* Effect.flip(NodeSsl.tcpConnect(hostname, silent.port)), "hostname", JSON.stringify(hostname))
        expectInvalid(
          yield* Effect.flip(Ssl.listen(0, { hostname, context: yield* serverContext() })),
          "hostname",
          JSON.stringify(hostname)
        )
      }
      expect(silent.connections()).toBe(0)
    }).pipe(Effect.provide(TestLayer)))
})

describe("protocol names and contexts through connect, listen and wrap", () => {
  const unknown = ["tls1.4", "TLS1.2", "ssl", "", "__proto__"]

  it.scopedLive("an unknown protocol string: InvalidArgumentError protocol, before any I/O", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const [a] = yield* Port.pipe()
      for (const name of unknown) {
        const protocol = name as Protocol.Protocol
        const shown = JSON.stringify(name)
        expectInvalid(yield* Effect.flip(Ssl.connect("localhost", silent.port, protocol)), "protocol", shown)
        expectInvalid(yield* Effect.flip(Ssl.listen(0, { hostname: "127.0.0.1", context: protocol })), "protocol", shown)
        expectInvalid(yield* Effect.flip(Ssl.wrap(a, { mode: "connect", hostname: "localhost", protocol })), "protocol", shown)
        expectInvalid(yield* Effect.flip(Ssl.wrap(a, { mode: "accept", protocol })), "protocol", shown)
        expectInvalid(yield* Effect.flip(SslContext.makeClient(protocol)), "protocol", shown)
        expectInvalid(yield* Effect.flip(SslContext.makeServer(protocol)), "protocol", shown)
      }
      expect(silent.connections()).toBe(0)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("something that is neither a context nor a protocol name: InvalidArgumentError context", () =>
    Effect.gen(function*() {
      const silent = yield* silentServer
      const [a] = yield* Port.pipe()
      for (const bogus of [{}, 42, true, { kind: "client", state: {} }]) {
        const context = bogus as unknown as SslContext.ClientContext
        expect(yield* Effect.flip(Ssl.connect("localhost", silent.port, context))).toMatchObject({
          _tag: "InvalidArgumentError",
          argument: "context"
        })
        expect(
          yield* Effect.flip(Ssl.listen(0, { context: bogus as unknown as SslContext.ServerContext }))
        ).toMatchObject({ _tag: "InvalidArgumentError", argument: "context" })
        expect(yield* Effect.flip(Ssl.wrap(a, { mode: "accept", context: bogus as unknown as SslContext.ServerContext })))
          .toMatchObject({ _tag: "InvalidArgumentError", argument: "context" })
      }
      expect(silent.connections()).toBe(0)
    }).pipe(Effect.provide(TestLayer)))
})

describe("files", () => {
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
      const key = yield* Effect.flip(SslContext.setIdentity(server, { chain: fixture("server-chain.pem"), key: garbage }))
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
      const accepted = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) =>
        Effect.zipRight(conn.output.write("still here\n"), conn.output.close))))
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
