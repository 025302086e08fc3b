/**
 * `effect-ssl demo`: a TLS server and a verifying client on loopback, with the shipped test
 * certificate, streaming data both ways at once and checking it with SHA-1; then one HTTPS request
 * with the Effect platform's HttpClient and HttpServer over effect-ssl.
 *
 * @since 0.1.0
 */
import { type Pki, Ssl, SslContext, SslError, TestCertificates } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { Sha1 } from "@effect-ssl/sha1"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Report from "../Report.js"
import { CliError } from "../Report.js"
import * as Stdio from "../Stdio.js"

const MiB = 1024 * 1024
const chunkSize = 64 * 1024

/**
 * `totalBytes` of deterministic pseudo-random data (xorshift32 from `seed`) in 64 KiB chunks,
 * generated as it is pulled.
 *
 * @since 0.1.0
 * @category data
 */
export const generated = (seed: number, totalBytes: number): Stream.Stream<Uint8Array> =>
  Stream.suspend(() => {
    let state = seed | 0 || 1
    let remaining = totalBytes
    return Stream.repeatEffectOption(
      Effect.suspend(() => {
        if (remaining <= 0) return Effect.fail(Option.none())
        const size = Math.min(chunkSize, remaining)
        remaining -= size
        const words = new Uint32Array(Math.ceil(size / 4))
        for (let i = 0; i < words.length; i++) {
          state ^= state << 13
          state ^= state >>> 17
          state ^= state << 5
          words[i] = state
        }
        return Effect.succeed(new Uint8Array(words.buffer, 0, size))
      })
    )
  })

interface Direction {
  readonly sent: string
  readonly received: string
  readonly bytes: number
  readonly millis: number
}

/**
 * Shows progress of `total` bytes: a bar redrawn on a terminal, or a line at every quarter
 * otherwise. `add` is called as bytes arrive; `finish` draws the final state.
 */
const makeProgress = (total: number) =>
  Effect.gen(function*() {
    let done = 0
    if (Stdio.stderrIsTty()) {
      const draw = Effect.suspend(() => Stdio.errorText(`\r  ${Report.progressBar(done, total)}\x1b[K`))
      const fiber = yield* Effect.forkScoped(Effect.repeat(draw, Schedule.spaced("100 millis")))
      return {
        add: (bytes: number) => {
          done += bytes
        },
        finish: Effect.zipRight(Fiber.interrupt(fiber), Effect.zipRight(draw, Stdio.errorText("\n")))
      }
    }
    let quarter = 0
    return {
      add: (bytes: number) => {
        done += bytes
        while (quarter < 4 && done * 4 >= total * (quarter + 1)) {
          quarter++
          process.stderr.write(
            `  progress: ${quarter * 25}% (${Report.mebibytes(done)} of ${Report.mebibytes(total)})\n`
          )
        }
      },
      finish: Effect.void
    }
  })

/**
 * One HTTPS request on the Effect platform: an `HttpServer` app served by
 * `NodeSsl.layerHttpServer`, asked by the `HttpClient` of `NodeSsl.layerHttpClient`, which verifies
 * the server with the client context as `Ssl.connect` does.
 */
const httpsRequest = (serverContext: SslContext.ServerContext, clientContext: SslContext.ClientContext) =>
  Effect.scoped(Effect.gen(function*() {
    const server = Context.get(
      yield* Layer.build(NodeSsl.layerHttpServer({ port: 0, hostname: "127.0.0.1", context: serverContext })),
      HttpServer.HttpServer
    )
    yield* HttpServer.serveEffect(Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const session = yield* Effect.orDie(NodeSsl.sessionOf(request))
      const alpn = Option.getOrElse(session.alpnProtocol, () => "none")
      return HttpServerResponse.text(
        `hello from the HTTPS server layer: ${request.method} ${request.url} over ${session.protocol}, ALPN ${alpn}`
      )
    })).pipe(Effect.provideService(HttpServer.HttpServer, server))
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    // The client offers HTTP/1.1 by ALPN, as browsers and curl do.
    yield* SslContext.setAlpn(clientContext, ["http/1.1"])
    const client = Context.get(yield* Layer.build(NodeSsl.layerHttpClient(clientContext)), HttpClient.HttpClient)
    const url = `https://localhost:${port}/hello`
    const response = yield* client.get(url)
    return { url, status: response.status, text: yield* response.text }
  })).pipe(
    // A TLS failure is the SslError under the platform's RequestError.
    Effect.mapError((error): SslError.SslError | CliError =>
      SslError.isSslError(error)
        ? error
        : error._tag === "RequestError" && SslError.isSslError(error.cause)
        ? error.cause
        : new CliError({ message: error.message })
    )
  )

/**
 * Runs the demo with `sizeMiB` MiB each way.
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (
  sizeMiB: number
): Effect.Effect<void, CliError | SslError.SslError, Ssl.Ssl | FileSystem.FileSystem | Pki.Pki> =>
  Effect.scoped(Effect.gen(function*() {
    if (!Number.isSafeInteger(sizeMiB) || sizeMiB < 1) {
      return yield* new CliError({ message: `--size must be a positive whole number of MiB, not ${sizeMiB}` })
    }
    const total = sizeMiB * MiB
    const out = (line: string) => Stdio.writeStdout(`${line}\n`)

    yield* out("effect-ssl demo: a TLS server and a verifying client on loopback")
    yield* out(`  certificate: ${TestCertificates.path} (the shipped test certificate: for demos only)`)

    const serverContext = yield* SslContext.makeServer()
    yield* SslContext.loadCertificateChain(serverContext, TestCertificates.path)
    yield* SslContext.loadPrivateKey(serverContext, TestCertificates.path)
    const clientContext = yield* SslContext.makeClient()
    yield* SslContext.loadVerifyRootCertificates(clientContext, TestCertificates.path)

    const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: serverContext })
    const port = listener.address.port
    yield* out(`  server: listening on ${Report.address(listener.address)}`)
    const [server, client] = yield* Effect.all([
      Ssl.accept(listener),
      Ssl.connect("localhost", port, clientContext)
    ], { concurrency: 2 })
    const session = yield* client.session
    yield* out(`  client: connected to localhost:${port}, trusting the test certificate`)
    yield* out("")
    yield* out("TLS session (as the client sees it):")
    for (const line of Report.sessionLines(session)) yield* out(line)
    if (!session.verified) {
      return yield* new CliError({ message: "the client did not verify the server's certificate" })
    }

    yield* out("")
    yield* out(`Streaming ${sizeMiB} MiB each way at once (client → server and server → client)…`)
    const progress = yield* makeProgress(2 * total)
    const start = Date.now()
    const direction = (from: Ssl.Connection, to: Ssl.Connection, seed: number) =>
      Effect.gen(function*() {
        let bytes = 0
        const [sent, received] = yield* Effect.all([
          Effect.zipLeft(
            Sha1.sha1(generated(seed, total).pipe(Stream.tap((chunk) => from.output.write(chunk)))),
            from.output.close
          ),
          Sha1.sha1(to.input.stream.pipe(Stream.tap((chunk) =>
            Effect.sync(() => {
              bytes += chunk.length
              progress.add(chunk.length)
            })
          )))
        ], { concurrency: 2 })
        return { sent, received, bytes, millis: Date.now() - start } satisfies Direction
      })
    const [up, down] = yield* Effect.all(
      [direction(client, server, 0x2545f491), direction(server, client, 0x9e3779b9)],
      {
        concurrency: 2
      }
    )
    const millis = Date.now() - start
    yield* progress.finish

    yield* out("")
    yield* out(`Throughput (${Report.seconds(millis)} in all):`)
    yield* out(
      `  client → server: ${Report.mebibytes(up.bytes)} in ${Report.seconds(up.millis)} (${
        Report.rate(up.bytes, up.millis)
      })`
    )
    yield* out(
      `  server → client: ${Report.mebibytes(down.bytes)} in ${Report.seconds(down.millis)} (${
        Report.rate(down.bytes, down.millis)
      })`
    )
    yield* out(
      `  both ways: ${Report.mebibytes(up.bytes + down.bytes)} in ${Report.seconds(millis)} (${
        Report.rate(up.bytes + down.bytes, millis)
      })`
    )
    yield* out("")
    const verdict = (a: string, b: string) => (a === b ? "match" : "MISMATCH")
    yield* out("SHA-1 of the data:")
    yield* out(`  client sent:     ${up.sent}`)
    yield* out(`  server received: ${up.received}  ${verdict(up.sent, up.received)}`)
    yield* out(`  server sent:     ${down.sent}`)
    yield* out(`  client received: ${down.received}  ${verdict(down.sent, down.received)}`)
    if (up.sent !== up.received || down.sent !== down.received || up.bytes !== total || down.bytes !== total) {
      return yield* new CliError({
        message:
          `the data received differs from the data sent (received ${up.bytes} and ${down.bytes} bytes of ${total})`
      })
    }
    yield* out("All digests match.")

    yield* out("")
    yield* out("HTTPS on the Effect platform (NodeSsl.layerHttpServer, NodeSsl.layerHttpClient):")
    const https = yield* httpsRequest(serverContext, clientContext)
    yield* out(`  GET ${https.url} → ${https.status} ${https.text}`)
    if (https.status !== 200) {
      return yield* new CliError({ message: `the HTTPS request answered ${https.status}, not 200` })
    }
  }))

/**
 * The `demo` command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "demo",
  {
    size: Options.integer("size").pipe(
      Options.withDefault(64),
      Options.withDescription("MiB to stream each way (default 64)")
    )
  },
  ({ size }) => run(size)
).pipe(
  Command.withDescription(
    "TLS on loopback with the shipped test certificate: session details, data both ways at once checked with SHA-1, then one HTTPS request"
  )
)
