/**
 * `effect-ssl connect HOST PORT`: like `openssl s_client` for people. Standard input goes to the
 * server, what the server sends goes to standard output, the session summary goes to stderr.
 *
 * @since 0.1.0
 */
import { Protocol, Ssl, SslContext } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Contexts from "../Contexts.js"
import * as Report from "../Report.js"
import * as Stdio from "../Stdio.js"

/**
 * What `connect` is given.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  readonly host: string
  readonly port: number
  readonly ca: ReadonlyArray<string>
  readonly cert: Option.Option<string>
  readonly key: Option.Option<string>
  /** where the key's passphrase comes from (see Contexts.passphraseFrom) */
  readonly passin: Option.Option<string>
  readonly servername: Option.Option<string>
  readonly protocol: string
  readonly alpn: Option.Option<string>
  readonly insecure: boolean
}

const say = (line: string) => Stdio.errorLine(`effect-ssl connect: ${line}`)

/**
 * Connects, pumps stdin to the server and the server to stdout until the server closes.
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (config: Config) =>
  Effect.scoped(Effect.gen(function*() {
    const protocol = yield* Protocol.resolve(config.protocol)
    const context = yield* SslContext.makeClient(protocol.protocol)
    yield* Contexts.loadRoots(context, config.ca)
    yield* Contexts.loadIdentity(context, config.cert, config.key, config.passin)
    if (Option.isSome(config.alpn)) {
      yield* SslContext.setAlpn(context, config.alpn.value.split(",").map((p) => p.trim()).filter((p) => p !== ""))
    }
    if (config.insecure) {
      yield* SslContext.setVerify(context, false)
      yield* Stdio.errorLine(
        `effect-ssl connect: WARNING: --insecure: the server's certificate is NOT verified. ` +
          `Anyone between you and ${config.host}:${config.port} can read and change this connection.`
      )
    }

    const connection = yield* Option.match(config.servername, {
      onNone: () => Ssl.connect(config.host, config.port, context),
      onSome: (servername) =>
        Effect.flatMap(
          NodeSsl.tcpConnect(config.host, config.port),
          (tcp) => Ssl.wrap(tcp, { mode: "connect", context, hostname: servername })
        )
    })
    const session = yield* connection.session
    yield* say(`connected to ${config.host}:${config.port} (${Report.address(session.remoteAddress)})`)
    for (const line of Report.sessionLines(session)) yield* Stdio.errorLine(line)
    if (config.insecure && !session.verified) yield* Stdio.errorLine("  (NOT verified: --insecure)")

    let sent = 0
    let received = 0
    // stdin → server; at its end, close our output (close_notify) and keep reading.
    const upload = Stdio.stdin.pipe(
      Stream.runForEach((chunk) =>
        Effect.zipRight(
          connection.output.write(chunk),
          Effect.sync(() => {
            sent += chunk.length
          })
        )
      ),
      Effect.zipRight(connection.output.close)
    )
    const uploader = yield* Effect.forkScoped(upload)
    yield* connection.input.stream.pipe(
      Stream.runForEach((chunk) =>
        Effect.zipRight(
          Effect.sync(() => {
            received += chunk.length
          }),
          Stdio.writeStdout(chunk)
        )
      )
    )
    const uploaded = yield* Fiber.interrupt(uploader)
    if (Exit.isFailure(uploaded)) {
      const outcome = Report.outcome(uploaded.cause)
      if (Option.isSome(outcome.line)) yield* say(`sending stopped: ${outcome.line.value}`)
    }
    yield* say(`closed by the server (sent ${sent} bytes, received ${received} bytes)`)
  }))

/**
 * The `connect` command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "connect",
  {
    ca: Options.file("ca").pipe(
      Options.repeated,
      Options.withDescription("trust the CA certificates in this PEM file (repeatable), besides the system's")
    ),
    cert: Options.file("cert").pipe(Options.optional, Options.withDescription("client certificate chain (PEM)")),
    key: Options.file("key").pipe(
      Options.optional,
      Options.withDescription("the client certificate's private key (default: the --cert file)")
    ),
    passin: Options.text("passin").pipe(
      Options.optional,
      Options.withDescription(
        "the key's passphrase, as openssl -passin takes it: env:NAME, file:PATH (its first line) or pass:TEXT " +
          "(visible to other users of this machine)"
      )
    ),
    servername: Options.text("servername").pipe(
      Options.optional,
      Options.withDescription("the server name to send (SNI) and to verify (default: HOST)")
    ),
    protocol: Options.text("protocol").pipe(
      Options.withDefault("auto"),
      Options.withDescription(`one of ${Protocol.supportedClientProtocols.join(", ")} (default auto)`)
    ),
    alpn: Options.text("alpn").pipe(
      Options.optional,
      Options.withDescription("application protocols to offer, comma-separated (not supported yet)")
    ),
    insecure: Options.boolean("insecure").pipe(
      Options.withDescription("do not verify the server's certificate (dangerous)")
    ),
    host: Args.text({ name: "HOST" }),
    port: Args.integer({ name: "PORT" })
  },
  run
).pipe(
  Command.withDescription(
    "connect to a TLS server: stdin goes to the server, the server's data to stdout, the session summary to stderr"
  )
)
