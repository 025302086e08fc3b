/**
 * `effect-ssl serve PORT`: like `openssl s_server`. Echoes each connection's bytes back, logging
 * one line per connection, or serves HTTPS (`NodeSsl.layerHttpServer`), logging one line per
 * request.
 *
 * @since 0.1.0
 */
import { Protocol, Ssl, SslContext, TestCertificates } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
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
  /** where the key's passphrase comes from (see Contexts.passphraseFrom) */
  readonly passin: Option.Option<string>
  readonly host: string
  readonly protocol: string
  readonly verifyClient: boolean
  readonly ca: ReadonlyArray<string>
  readonly echo: boolean
  readonly http: boolean
  /** seconds a client may take to send a request's headers (--http) */
  readonly headersTimeout: number
  /** seconds a client may take to send a whole request (--http) */
  readonly requestTimeout: number
}

const defaultHeadersTimeout = 60
const defaultRequestTimeout = 300

const say = (line: string) => Stdio.errorLine(`effect-ssl serve: ${line}`)

interface Counts {
  in: number
  out: number
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

/**
 * What `--http` answers every request with: its method and path, and the TLS session it came on.
 * Each request is logged (a web server's access log); clients whose handshake fails reach
 * `logFailure`, and node:http closes clients that do not send a request in time.
 */
const httpApp = (verifyClient: boolean) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const session = yield* NodeSsl.sessionOf(request)
    yield* Effect.sync(() =>
      process.stderr.write(
        `effect-ssl serve: ${Report.address(session.remoteAddress)} ${session.protocol} ${session.cipher}${
          clientNote(verifyClient, session)
        }` +
          ` "${request.method} ${request.url}" 200\n`
      )
    )
    return HttpServerResponse.text(
      `Hello from effect-ssl serve: ${request.method} ${request.url} over ${session.protocol} (${session.cipher}).\n`,
      { contentType: "text/plain; charset=utf-8", headers: { server: "effect-ssl" } }
    )
  }).pipe(Effect.orDie)

const clientNote = (verifyClient: boolean, session: Ssl.SessionInfo) =>
  verifyClient
    ? Option.match(session.peerCertificate, { onNone: () => "", onSome: (cert) => ` client=${cert.subject}` })
    : ""

// 0 turns a timeout off, as in node:http.
const seconds = (value: number) => (value === 0 ? Duration.infinity : Duration.seconds(value))

/** Serves `--http` on the HTTPS server layer until interrupted. */
const serveHttp = (config: Config, context: SslContext.ServerContext) =>
  Effect.gen(function*() {
    const env = yield* Layer.build(NodeSsl.layerHttpServer({
      port: config.port,
      hostname: config.host,
      context,
      headersTimeout: seconds(config.headersTimeout),
      requestTimeout: seconds(config.requestTimeout),
      onHandshakeError: logFailure
    }))
    const server = Context.get(env, HttpServer.HttpServer)
    const address = server.address._tag === "TcpAddress" ? Report.address(server.address) : server.address.path
    yield* say(`listening on ${address} (http mode)`)
    yield* HttpServer.serveEffect(httpApp(config.verifyClient)).pipe(
      Effect.provideService(HttpServer.HttpServer, server)
    )
    yield* Effect.never.pipe(Effect.onInterrupt(() => say("stopped: listener closed, open connections closed")))
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
    const peer = Predicate.hasProperty(failure, "peer") && typeof failure.peer === "string"
      ? failure.peer
      : "connection"
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
    const loaded = yield* Contexts.loadIdentity(context, config.cert, config.key, config.passin)
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
        return yield* new CliError({
          message: "--verify-client needs --ca FILE: the CA certificates client certificates must chain to"
        })
      }
      yield* SslContext.setVerify(context, true)
      yield* Contexts.loadRoots(context, config.ca)
      yield* Effect.forEach(config.ca, (file) => SslContext.loadSuggestedCertificateAuthorities(context, file), {
        discard: true
      })
    } else if (config.ca.length > 0) {
      yield* say("note: --ca is only used with --verify-client; ignoring it")
    }

    if (mode === "http") return yield* serveHttp(config, context)
    if (config.headersTimeout !== defaultHeadersTimeout || config.requestTimeout !== defaultRequestTimeout) {
      yield* say("note: --headers-timeout and --request-timeout are used only with --http; ignoring them")
    }

    const listener = yield* Ssl.listen(config.port, { hostname: config.host, context })
    yield* say(`listening on ${Report.address(listener.address)} (${mode} mode)`)

    let interrupted = 0
    const handler = (connection: Ssl.Connection) =>
      Effect.gen(function*() {
        const session = yield* connection.session
        const counts: Counts = { in: 0, out: 0 }
        const client = clientNote(config.verifyClient, session)
        yield* echo(connection, counts).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (Exit.isInterrupted(exit)) interrupted++
              process.stderr.write(
                `effect-ssl serve: ${
                  Report.address(session.remoteAddress)
                } ${session.protocol} ${session.cipher}${client}` +
                  ` in=${counts.in} out=${counts.out} ${describeExit(exit)}\n`
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
    key: Options.file("key").pipe(
      Options.optional,
      Options.withDescription("its private key (default: the --cert file)")
    ),
    passin: Options.text("passin").pipe(
      Options.optional,
      Options.withDescription(
        "the key's passphrase, as openssl -passin takes it: env:NAME, file:PATH (its first line) or pass:TEXT " +
          "(visible to other users of this machine)"
      )
    ),
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
      Options.withDescription("serve HTTPS: answer each request with a small HTTP/1.1 200 naming the protocol")
    ),
    headersTimeout: Options.float("headers-timeout").pipe(
      Options.withDefault(defaultHeadersTimeout),
      Options.withDescription(
        `--http: seconds a client may take to send a request's headers before it is closed (default ${defaultHeadersTimeout})`
      )
    ),
    requestTimeout: Options.float("request-timeout").pipe(
      Options.withDefault(defaultRequestTimeout),
      Options.withDescription(
        `--http: seconds a client may take to send a whole request (default ${defaultRequestTimeout})`
      )
    ),
    port: Args.integer({ name: "PORT" })
  },
  run
).pipe(
  Command.withDescription("a TLS server: echo or HTTP, one log line per connection; Ctrl-C stops it cleanly")
)
