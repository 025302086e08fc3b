import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import * as Ndjson from "@effect/platform/Ndjson"
import * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import { describe, expect, it } from "@effect/vitest"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { serveOn } from "../../core/test/helpers/Connections.js"
import {
  clientContext,
  requiringClientCertificates,
  serverContext,
  TestLayer
} from "../../core/test/helpers/Contexts.js"

const decoder = new TextDecoder()

class Ask extends Schema.Class<Ask>("Ask")({ id: Schema.Number, text: Schema.String }) {}
class Answer extends Schema.Class<Answer>("Answer")({
  id: Schema.Number,
  upper: Schema.String,
  protocol: Schema.String
}) {}

/**
 * A server handler speaking NDJSON over `Ssl.toSocket`: it reads Asks through the socket's channel
 * and writes one Answer line per Ask, until the client's end.
 */
const ndjsonServer = (conn: Ssl.Connection) =>
  Effect.gen(function*() {
    const { protocol } = yield* conn.session
    const socket = Ssl.toSocket(conn)
    const write = yield* socket.writer
    const encode = Schema.encodeSync(Schema.parseJson(Answer))
    yield* Stream.never.pipe(
      Stream.pipeThroughChannel(
        Socket.toChannelWith<Ndjson.NdjsonError | ParseError>()(socket).pipe(Channel.pipeTo(Ndjson.unpackSchema(Ask)()))
      ),
      Stream.runForEach((ask) =>
        write(`${encode(new Answer({ id: ask.id, upper: ask.text.toUpperCase(), protocol }))}\n`)
      )
    )
  }).pipe(Effect.scoped)

/** Reads everything a socket's run delivers until the run ends, as text. */
const runToText = (socket: Socket.Socket) =>
  Effect.gen(function*() {
    const parts: Array<string> = []
    yield* socket.run((bytes) => {
      parts.push(decoder.decode(bytes))
    })
    return parts.join("")
  })

describe("Ssl.toSocket", () => {
  it.scopedLive("NDJSON both ways over TLS: a Socket channel on each end, messages larger than a TLS record", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), ndjsonServer)
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const big = "x".repeat(100_000)
      const asks = [new Ask({ id: 1, text: "hello" }), new Ask({ id: 2, text: big }), new Ask({ id: 3, text: "über" })]
      const answers = yield* Stream.fromIterable(asks).pipe(
        Stream.pipeThroughChannel(
          Socket.toChannelWith<Ndjson.NdjsonError | ParseError>()(Ssl.toSocket(conn)).pipe(
            Ndjson.duplexSchema({ inputSchema: Ask, outputSchema: Answer })
          )
        ),
        Stream.runCollect
      )
      expect(Chunk.toReadonlyArray(answers).map((a) => [a.id, a.upper.length, a.protocol])).toEqual([
        [1, 5, "TLSv1.3"],
        [2, 100_000, "TLSv1.3"],
        [3, 4, "TLSv1.3"]
      ])
      expect(answers.pipe(Chunk.unsafeGet(0)).upper).toBe("HELLO")
      expect(answers.pipe(Chunk.unsafeGet(2)).upper).toBe("ÜBER")
      expect(answers.pipe(Chunk.unsafeGet(1)).upper).toBe(big.toUpperCase())
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("run hands over every byte the peer sent and ends at its close_notify; the writer's end sends ours", () =>
    Effect.gen(function*() {
      const received = yield* Deferred.make<string>()
      const listener = yield* serveOn(yield* serverContext(), (conn) =>
        Effect.gen(function*() {
          yield* conn.output.write("line one\nline two\n")
          yield* conn.output.close
          // What the client writes after its run has ended still arrives, until its close_notify.
          yield* Deferred.succeed(received, decoder.decode(yield* conn.input.readAll))
        }))
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const socket = Ssl.toSocket(conn)
      expect(yield* runToText(socket)).toBe("line one\nline two\n")
      // The connection is at its end of input: another run ends at once.
      expect(yield* runToText(socket)).toBe("")
      yield* Effect.scoped(Effect.gen(function*() {
        const write = yield* socket.writer
        yield* write("after the server's close_notify: ")
        yield* write(new TextEncoder().encode("bytes too"))
      }))
      expect(yield* Deferred.await(received)).toBe("after the server's close_notify: bytes too")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a handler effect that fails ends the run with its error", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), (conn) =>
        Effect.zipRight(conn.output.write("a"), Effect.zipRight(conn.input.readAll, Effect.void)))
      const conn = yield* Ssl.connect("localhost", listener.address.port, yield* clientContext())
      const exit = yield* Effect.exit(
        Ssl.toSocket(conn).run(() =>
          Effect.fail("handler failed" as const)
        )
      )
      expect(exit).toEqual(Exit.fail("handler failed"))
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a CloseEvent sends close_notify and ends the run: cleanly for 1000, with SocketCloseError for others", () =>
    Effect.gen(function*() {
      const seen = yield* Queue.unbounded<string>()
      const listener = yield* serveOn(yield* serverContext(), (conn) =>
        Effect.gen(function*() {
          yield* conn.output.write("hi")
          // The client's close_notify is its end of input here.
          yield* Queue.offer(seen, decoder.decode(yield* conn.input.readAll))
        }))
      const ctx = yield* clientContext()
      for (const [code, expected] of [[1000, "ok"], [4001, "closed 4001 going away"]] as const) {
        const conn = yield* Ssl.connect("localhost", listener.address.port, ctx)
        const socket = Ssl.toSocket(conn)
        const opened = yield* Deferred.make<void>()
        const result = yield* socket.run(() => {}, { onOpen: Deferred.succeed(opened, undefined) }).pipe(
          Effect.as("ok"),
          Effect.catchAll((error) =>
            Effect.succeed(
              Socket.SocketCloseError.is(error) ? `closed ${error.code} ${error.closeReason}` : `other ${error.reason}`
            )
          ),
          Effect.fork
        )
        yield* Deferred.await(opened)
        yield* Effect.scoped(Effect.gen(function*() {
          const write = yield* socket.writer
          yield* write(`before ${code}`)
          yield* write(new Socket.CloseEvent(code, "going away"))
        }))
        expect(yield* result.await.pipe(Effect.flatten)).toBe(expected)
        expect(yield* Queue.take(seen)).toBe(`before ${code}`)
      }
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a read that fails is a SocketGenericError \"Read\" whose cause is the SslError", () =>
    Effect.gen(function*() {
      // The server ends the connection without close_notify; the client detects truncation.
      const listener = yield* serveOn(
        yield* serverContext(),
        (conn) => Effect.zipRight(conn.output.write("partial"), conn.abandon)
      )
      const ctx = yield* clientContext()
      yield* SslContext.setDetectTruncation(ctx, true)
      const conn = yield* Ssl.connect("localhost", listener.address.port, ctx)
      const error = yield* Effect.flip(Ssl.toSocket(conn).run(() => {}))
      expect(error.reason).toBe("Read")
      const cause = (error as Socket.SocketGenericError).cause
      expect(SslError.isSslError(cause)).toBe(true)
      expect(cause).toMatchObject({ _tag: "IoError", reason: "TruncatedEof" })
    }).pipe(Effect.provide(TestLayer)))
})

describe("NodeSsl.layerSocket", () => {
  it.scopedLive("connects per run, as NodeSocket does: two runs are two verified connections", () =>
    Effect.gen(function*() {
      const accepted = yield* Ref.make(0)
      const listener = yield* serveOn(yield* serverContext(), (conn) =>
        Effect.gen(function*() {
          const n = yield* Ref.updateAndGet(accepted, (n) => n + 1)
          yield* conn.output.write(`connection ${n}\n`)
          yield* conn.output.close
          yield* conn.input.readAll
        }))
      const socket = Context.get(
        yield* Layer.build(
          NodeSsl.layerSocket({ host: "localhost", port: listener.address.port, context: yield* clientContext() })
        ),
        Socket.Socket
      )
      // Building the layer connected to nothing.
      expect(yield* Ref.get(accepted)).toBe(0)
      expect(yield* runToText(socket)).toBe("connection 1\n")
      expect(yield* runToText(socket)).toBe("connection 2\n")
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("writes wait for a run to connect, and go to its connection", () =>
    Effect.gen(function*() {
      const listener = yield* serveOn(yield* serverContext(), (conn) =>
        Effect.gen(function*() {
          const line = yield* conn.input.readLine
          yield* conn.output.write(`got ${Option.getOrElse(line, () => "nothing")}\n`)
          yield* conn.output.close
        }))
      const socket = Context.get(
        yield* Layer.build(
          NodeSsl.layerSocket({ host: "localhost", port: listener.address.port, context: yield* clientContext() })
        ),
        Socket.Socket
      )
      const write = yield* socket.writer
      const written = yield* Effect.fork(write("early\n"))
      expect(yield* runToText(socket)).toBe("got early\n")
      yield* written.await
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a connect that fails fails the run with SocketGenericError \"Open\" carrying the SslError", () =>
    Effect.gen(function*() {
      // The server's certificate is for localhost under the fixture root; this client trusts nothing of it.
      const listener = yield* serveOn(yield* serverContext())
      const socket = Context.get(
        yield* Layer.build(NodeSsl.layerSocket({ host: "localhost", port: listener.address.port })),
        Socket.Socket
      )
      const error = yield* Effect.flip(socket.run(() => {}))
      expect(error.reason).toBe("Open")
      expect((error as Socket.SocketGenericError).cause).toMatchObject({ _tag: "VerifyError", reason: "UnknownIssuer" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("the layer fails on a server context (the only thing it checks when built)", () =>
    Effect.gen(function*() {
      const server = yield* serverContext()
      const error = yield* Effect.flip(
        Layer.build(NodeSsl.layerSocket({ host: "localhost", port: 1, context: server as never }))
      )
      expect(error._tag).toBe("InvalidArgumentError")
    }).pipe(Effect.provide(TestLayer)))
})

describe("NodeSsl.layerSocketServer", () => {
  it.scopedLive("listens when built, tells its address, and serves each handshaken connection as a Socket", () =>
    Effect.gen(function*() {
      const built = yield* Layer.build(
        NodeSsl.layerSocketServer({ port: 0, hostname: "127.0.0.1", context: yield* serverContext() })
      )
      const server = Context.get(built, SocketServer.SocketServer)
      expect(server.address._tag).toBe("TcpAddress")
      const port = (server.address as SocketServer.TcpAddress).port
      expect(port).toBeGreaterThan(0)
      yield* Effect.forkScoped(server.run((socket) =>
        Effect.gen(function*() {
          const write = yield* socket.writer
          yield* socket.run((bytes) => write(`echo:${decoder.decode(bytes)}`))
        }).pipe(Effect.scoped)
      ))
      // A client that fails its handshake (it trusts nothing) does not stop the server.
      const refused = yield* Effect.flip(Effect.scoped(Ssl.connect("localhost", port)))
      expect(refused._tag).toBe("VerifyError")
      const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
      yield* conn.output.write("ping")
      expect(Option.map(yield* conn.input.read(), (b) => decoder.decode(b))).toEqual(Option.some("echo:ping"))
      yield* conn.output.close
      expect(Option.isNone(yield* conn.input.read())).toBe(true)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a server that requires client certificates refuses a client without one", () =>
    Effect.gen(function*() {
      const server = Context.get(
        yield* Layer.build(
          NodeSsl.layerSocketServer({ port: 0, hostname: "127.0.0.1", context: yield* requiringClientCertificates() })
        ),
        SocketServer.SocketServer
      )
      const handled = yield* Ref.make(0)
      yield* Effect.forkScoped(server.run(() => Ref.update(handled, (n) => n + 1)))
      const port = (server.address as SocketServer.TcpAddress).port
      // TLS 1.3: the client's handshake is over before the server has looked at its certificate;
      // the refusal arrives as the first read's failure.
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
        return yield* conn.input.read()
      })).pipe(Effect.flip)
      expect(SslError.isSslError(outcome)).toBe(true)
      expect(yield* Ref.get(handled)).toBe(0)
    }).pipe(Effect.provide(TestLayer)))
})
