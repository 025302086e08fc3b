/**
 * `effect-ssl serve PORT`: like `openssl s_server`. Echoes each connection's bytes back, or
 * answers HTTP requests, serving connections concurrently and logging one line per connection.
 *
 * @since 0.1.0
 */
import { type Port, Protocol, Ssl, SslContext, type SslError, TestCertificates } from "@effect-ssl/core"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import * as Contexts from "../Contexts.js"
import * as Report from "../Report.js"
import { CliError } from "../Report.js"
import * as Stdio from "../Stdio.js"

/**
 * What `serve` is given.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  readonly port: number
  readonly cert: Option.Option<string>
  readonly key: Option.Option<string>
  readonly host: string
  readonly protocol: string
  readonly verifyClient: boolean
  readonly ca: ReadonlyArray<string>
  readonly echo: boolean
  readonly http: boolean
}

const say = (line: string) => Stdio.errorLine(`effect-ssl serve: ${line}`)

interface Counts {
  in: number
  out: number
  note: string
}

// ---------------------------------------------------------------------------------------------
// Modes

const echo = (connection: Ssl.Connection, counts: Counts) =>
  Effect.zipRight(
    connection.input.stream.pipe(
      Stream.runForEach((chunk) => {
        counts.in += chunk.length
        return Effect.zipRight(
          connection.output.write(chunk),
          Effect.sync(() => {
            counts.out += chunk.length
          })
        )
      })
    ),
    connection.output.close
  )

const maxHead = 16 * 1024

type Head =
  | { readonly _tag: "Head"; readonly text: string }
  | { readonly _tag: "Eof"; readonly bytes: number }
  | { readonly _tag: "TooLarge" }

/** Reads up to the blank line that ends an HTTP request head, at most 16 KiB. */
const readHead = (input: Port.Input, counts: Counts): Effect.Effect<Head, SslError.SslError> =>
  Effect.gen(function*() {
    let text = ""
    while (true) {
      const chunk = yield* input.read()
      if (Option.isNone(chunk)) return { _tag: "Eof", bytes: text.length } as const
      counts.in += chunk.value.length
      text += Buffer.from(chunk.value.buffer, chunk.value.byteOffset, chunk.value.byteLength).toString("latin1")
      const end = text.search(/\r?\n\r?\n/)
      if (end >= 0) return { _tag: "Head", text: text.slice(0, end) } as const
      if (text.length > maxHead) return { _tag: "TooLarge" } as const
    }
  })

const response = (status: string, body: string, head: boolean) => {
  const bytes = Buffer.byteLength(body)
  return `HTTP/1.1 ${status}\r\n` +
    "Content-Type: text/plain; charset=utf-8\r\n" +
    `Content-Length: ${bytes}\r\n` +
    "Connection: close\r\n" +
    "Server: effect-ssl\r\n" +
    "\r\n" +
    (head ? "" : body)
}

const http = (connection: Ssl.Connection, session: Ssl.SessionInfo, counts: Counts) =>
  Effect.gen(function*() {
    const head = yield* readHead(connection.input, counts)
    let answer: string
    switch (head._tag) {
      case "Eof": {
        if (head.bytes === 0) {
          counts.note = "no request"
          return yield* connection.output.close
        }
        counts.note = "incomplete request"
        answer = response("400 Bad Request", "Bad request: the request head was incomplete.\n", false)
        break
      }
      case "TooLarge": {
        counts.note = "request head too large"
        answer = response("431 Request Header Fields Too Large", "The request head is larger than 16 KiB.\n", false)
        break
      }
      case "Head": {
        const requestLine = head.text.split(/\r?\n/, 1)[0] ?? ""
        const match = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(requestLine)
        if (match === null) {
          counts.note = "not HTTP"
          answer = response("400 Bad Request", "Bad request: that is not an HTTP/1.x request line.\n", false)
          break
        }
        counts.note = `"${match[1]} ${match[2]}" 200`
        answer = response(
          "200 OK",
          `Hello from effect-ssl serve: ${match[1]} ${match[2]} over ${session.protocol} (${session.cipher}).\n`,
          match[1] === "HEAD"
        )
      }
    }
    const bytes = Buffer.from(answer, "utf8")
    yield* connection.output.write(bytes)
    counts.out += bytes.length
    yield* connection.output.close
    // Let the client close first (its close_notify), briefly, rather than reset it.
    yield* connection.input.stream.pipe(
      Stream.runForEach((chunk) =>
        Effect.sync(() => {
          counts.in += chunk.length
        })
      ),
      Effect.timeout("2 seconds"),
      Effect.ignore
    )
  })

// ---------------------------------------------------------------------------------------------
// Logging

const describeExit = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  if (Cause.isInterruptedOnly(exit.cause)) return "closed (server shutting down)"
  const outcome = Report.outcome(exit.cause)
  return `failed: ${Option.getOrElse(outcome.line, () => "unknown failure")}`
}

// Connections that fail before the handler runs (their handshake) reach Ssl.serve's onError.
const logFailure = (cause: Cause.Cause<unknown>) =>
  Effect.sync(() => {
    const failure = Option.getOrUndefined(Cause.failureOption(cause))
    const peer = Predicate.hasProperty(failure, "peer") && typeof failure.peer === "string" ? failure.peer : "connection"
    const line = Option.getOrElse(Report.outcome(cause).line, () => "failed")
    process.stderr.write(`effect-ssl serve: ${peer} failed: ${line}\n`)
  })

// ---------------------------------------------------------------------------------------------

/**
 * Listens and serves until interrupted (Ctrl-C, SIGTERM), then closes every connection.
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (config: Config) =>
  Effect.scoped(Effect.gen(function*() {
    if (config.echo && config.http) {
      return yield* new CliError({ message: "choose one mode: --echo or --http" })
    }
    const mode = config.http ? "http" : "echo"
    const protocol = yield* Protocol.resolve(config.protocol)
    const context = yield* SslContext.makeServer(protocol.protocol)
    const loaded = yield* Contexts.loadIdentity(context, config.cert, config.key)
    if (!loaded) {
      yield* say(
        `WARNING: no --cert/--key given: serving the shipped test certificate (${TestCertificates.path}). ` +
          "Everybody has its private key: use it for tests only."
      )
      yield* SslContext.loadCertificateChain(context, TestCertificates.path)
      yield* SslContext.loadPrivateKey(context, TestCertificates.path)
    }
    if (config.verifyClient) {
      if (config.ca.length === 0) {
        return yield* new CliError({ message: "--verify-client needs --ca FILE: the CA certificates client certificates must chain to" })
      }
      yield* SslContext.setVerify(context, true)
      yield* Contexts.loadRoots(context, config.ca)
      yield* Effect.forEach(config.ca, (file) => SslContext.loadSuggestedCertificateAuthorities(context, file), {
        discard: true
      })
    } else if (config.ca.length > 0) {
      yield* say("note: --ca is only used with --verify-client; ignoring it")
    }

    const listener = yield* Ssl.listen(config.port, { hostname: config.host, context })
    yield* say(`listening on ${Report.address(listener.address)} (${mode} mode)`)

    let interrupted = 0
    const handler = (connection: Ssl.Connection) =>
      Effect.gen(function*() {
        const session = yield* connection.session
        const counts: Counts = { in: 0, out: 0, note: "" }
        const work = mode === "echo" ? echo(connection, counts) : http(connection, session, counts)
        const client = config.verifyClient
          ? Option.match(session.peerCertificate, { onNone: () => "", onSome: (cert) => ` client=${cert.subject}` })
          : ""
        yield* work.pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (Exit.isInterrupted(exit)) interrupted++
              const note = counts.note === "" ? "" : ` ${counts.note}`
              process.stderr.write(
                `effect-ssl serve: ${Report.address(session.remoteAddress)} ${session.protocol} ${session.cipher}${client}` +
                  ` in=${counts.in} out=${counts.out}${note} ${describeExit(exit)}\n`
              )
            })
          ),
          Effect.ignore
        )
      })

    yield* Ssl.serve(listener, handler, { onError: logFailure }).pipe(
      Effect.onInterrupt(() =>
        say(`stopped: listener closed, ${interrupted} open connection${interrupted === 1 ? "" : "s"} closed`)
      )
    )
  }))

/**
 * The `serve` command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "serve",
  {
    cert: Options.file("cert").pipe(
      Options.optional,
      Options.withDescription("server certificate chain (PEM; default: the shipped test certificate)")
    ),
    key: Options.file("key").pipe(Options.optional, Options.withDescription("its private key (default: the --cert file)")),
    host: Options.text("host").pipe(Options.withDefault("127.0.0.1"), Options.withDescription("address to listen on")),
    protocol: Options.text("protocol").pipe(
      Options.withDefault("auto"),
      Options.withDescription(`one of ${Protocol.supportedServerProtocols.join(", ")} (default auto)`)
    ),
    verifyClient: Options.boolean("verify-client").pipe(
      Options.withDescription("require a client certificate that chains to a --ca")
    ),
    ca: Options.file("ca").pipe(
      Options.repeated,
      Options.withDescription("CA certificates client certificates must chain to (repeatable; with --verify-client)")
    ),
    echo: Options.boolean("echo").pipe(Options.withDescription("echo each connection's bytes back (the default)")),
    http: Options.boolean("http").pipe(
      Options.withDescription("answer each request with a small HTTP/1.1 200 naming the protocol")
    ),
    port: Args.integer({ name: "PORT" })
  },
  run
).pipe(
  Command.withDescription("a TLS server: echo or HTTP, one log line per connection; Ctrl-C stops it cleanly")
)
