/**
 * Public-key pinning (`SslContext.setPinnedPublicKeys`): after the usual verification, the peer's
 * chain must hold a certificate whose SubjectPublicKeyInfo digest is pinned. Pins are computed
 * here with the `openssl` command, not with effect-ssl.
 */
import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ChildProcess from "node:child_process"
import { echo, serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"

/** The SPKI SHA-256 pin of the first certificate of a PEM file, as `openssl` computes it. */
const opensslPin = (file: string): string =>
  ChildProcess.execSync(
    `openssl x509 -in '${fixture(file)}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`
  ).toString().trim()

const leaf = opensslPin("server.pem")
const intermediate = opensslPin("intermediate-ca.pem")
const root = opensslPin("root-ca.pem")
const elsewhere = opensslPin("unknown-ca.pem")

const connectPinned = (port: number, pins: ReadonlyArray<string>) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* clientContext()
    yield* SslContext.setPinnedPublicKeys(client, pins)
    const conn = yield* Ssl.connect("localhost", port, client)
    yield* conn.output.write("pinned\n")
    return yield* conn.input.readLine
  }))

describe("a client with pinned public keys", () => {
  it.scopedLive("connects when the leaf, the intermediate or the root is pinned, and refuses a chain with none of them", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), echo)
      const port = listener.address.port
      for (const pin of [leaf, intermediate, root]) {
        expect(yield* connectPinned(port, [elsewhere, pin])).toEqual(Option.some("pinned"))
      }
      const error = yield* Effect.flip(connectPinned(port, [elsewhere]))
      expect(error).toBeInstanceOf(SslError.VerifyError)
      expect(error).toMatchObject({ reason: "PinMismatch", side: "client" })
      // and no pins: no pinning
      expect(yield* connectPinned(port, [])).toEqual(Option.some("pinned"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("the pin is what session.peerCertificate.spkiSha256 says", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), echo)
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const session = yield* conn.session
      expect(Option.map(session.peerCertificate, (c) => c.spkiSha256)).toEqual(Option.some(leaf))
    }).pipe(Effect.provide(TestLayer)))

  it.effect("pins that are not base64 SHA-256 digests are refused when set", () =>
    Effect.gen(function*() {
      const client = yield* SslContext.makeClient()
      for (const bad of ["", "sha256/abc", leaf.slice(1), `${leaf}x`]) {
        const error = yield* Effect.flip(SslContext.setPinnedPublicKeys(client, [bad]))
        expect(error).toMatchObject({ _tag: "InvalidArgumentError", argument: "pins" })
      }
    }))
})

describe("a server with pinned public keys", () => {
  it.scopedLive("accepts a client whose chain holds a pinned key and refuses one whose chain does not", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      yield* SslContext.setVerify(server, true)
      yield* SslContext.loadVerifyRootCertificates(server, fixture("root-ca.pem"))
      yield* SslContext.setPinnedPublicKeys(server, [opensslPin("client.pem")])
      const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
      const client = yield* clientContext()
      yield* SslContext.loadCertificateChain(client, fixture("client-chain.pem"))
      yield* SslContext.loadPrivateKey(client, fixture("client.key"))
      const accepted = yield* Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => conn.session)))
      yield* Effect.scoped(Ssl.connect("localhost", listener.address.port, client))
      expect((yield* accepted.await)._tag).toBe("Success")

      yield* SslContext.setPinnedPublicKeys(server, [elsewhere])
      const refused = yield* Effect.fork(Effect.scoped(Effect.flip(Ssl.accept(listener))))
      yield* Effect.scoped(Effect.ignore(Effect.flatMap(
        Ssl.connect("localhost", listener.address.port, client),
        (conn) => conn.input.read()
      )))
      expect(yield* refused.await).toMatchObject({ _tag: "Success", value: { _tag: "VerifyError", reason: "PinMismatch", side: "server" } })
    }).pipe(Effect.provide(TestLayer)))
})
