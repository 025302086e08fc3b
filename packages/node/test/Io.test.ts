/**
 * Reads and writes: every read gives a plain Uint8Array (never a Node Buffer, whose `slice`
 * shares memory, so that `new DataView(bytes.slice().buffer)` reads other bytes), whatever the
 * transport; a write that returned leaves the caller free to change its array; both directions
 * run at once over one connection, and a writer faster than its reader is held back.
 */
import { Port, Ssl, SslContext, SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { eventually, watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()
afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
})

/** "Uint8Array" for a plain one; else the name of what it is ("Buffer"). */
const kindOf = (bytes: Uint8Array) =>
  Object.getPrototypeOf(bytes) === Uint8Array.prototype ? "Uint8Array" : bytes.constructor.name

/** A decoder's habit: the bytes a DataView over a copy's `.buffer` sees. */
const throughDataView = (bytes: Uint8Array) => {
  const view = new DataView(bytes.slice().buffer)
  return Array.from({ length: view.byteLength }, (_, i) => view.getUint8(i))
}

/** Fails a wait that a wrong length (a read for 1.3 GB, say) would make last for ever. */
const bounded = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, { duration: "10 seconds", onTimeout: () => new Error(`${what}: not within 10 s`) })

/** Two connected duplexes: what `a` writes, `b` reads, over one kind of transport. */
interface Transport {
  readonly name: string
  readonly pair: Effect.Effect<readonly [Port.Duplex, Port.Duplex], unknown, Scope.Scope | Ssl.Ssl | SslContextDeps>
}
type SslContextDeps = Effect.Effect.Context<ReturnType<typeof serverContext>>

/**
 * A TLS listener with one accept under way, and the connect that it will take: the client's end
 * can be opened in a scope of its own while the server's lives in the test's.
 */
const tlsEnds = (detectTruncation: boolean) =>
  Effect.gen(function*() {
    const server = yield* serverContext()
    const client = yield* clientContext()
    if (detectTruncation) {
      yield* SslContext.setDetectTruncation(server, true)
      yield* SslContext.setDetectTruncation(client, true)
    }
    const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: server })
    const accepted = yield* Effect.fork(Ssl.accept(listener))
    return { connect: Ssl.connect("localhost", listener.address.port, client), accepted }
  })

const tlsPair = (detectTruncation: boolean) =>
  Effect.gen(function*() {
    const { accepted, connect } = yield* tlsEnds(detectTruncation)
    const a = yield* connect
    return [a, yield* Fiber.join(accepted)] as const
  })

/** Plain TCP ports: tcpConnect to a tcpListen listener. */
const tcpPair = Effect.gen(function*() {
  const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
  const accepted = yield* Effect.fork(NodeSsl.tcpAccept(listener))
  const a = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
  return [a, yield* Fiber.join(accepted)] as const
})

/** Both ends of `[a, b]` wrapped: a as the client, b as the server. */
const wrapped = (pair: readonly [Port.Duplex, Port.Duplex]) =>
  Effect.gen(function*() {
    const server = yield* Effect.fork(
      Effect.flatMap(serverContext(), (context) => Ssl.wrap(pair[1], { mode: "accept", context }))
    )
    const a = yield* Ssl.wrap(pair[0], { mode: "connect", hostname: "localhost", context: yield* clientContext() })
    return [a, yield* Fiber.join(server)] as const
  })

const transports: ReadonlyArray<Transport> = [
  { name: "TLS on the native handle", pair: tlsPair(false) },
  { name: "TLS over the JS-stream transport (setDetectTruncation)", pair: tlsPair(true) },
  { name: "Ssl.wrap over Port.pipe", pair: Effect.flatMap(Port.pipe({ capacity: 4096 }), wrapped) },
  { name: "Ssl.wrap over TCP ports (STARTTLS)", pair: Effect.flatMap(tcpPair, wrapped) },
  { name: "plain TCP ports", pair: tcpPair }
]

/** 64 KiB numbered by position, written as a view into a larger Node Buffer. */
const payload = (() => {
  const bytes = Buffer.alloc(64 * 1024 + 16)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >>> 8)) & 255
  return bytes.subarray(16)
})()

describe("every read hands out plain Uint8Arrays that a DataView reads right", () => {
  for (const transport of transports) {
    it.scopedLive(transport.name, () =>
      Effect.gen(function*() {
        const [a, b] = yield* transport.pair
        yield* Effect.fork(Effect.zipRight(a.output.write(payload), a.output.close))
        const pieces: Array<{ readonly how: string; readonly bytes: Uint8Array }> = []
        const first = yield* b.input.read(3)
        if (Option.isSome(first)) pieces.push({ how: "read(3)", bytes: first.value })
        pieces.push({ how: "readExactly", bytes: yield* b.input.readExactly(5) })
        const read = yield* b.input.read(1000)
        if (Option.isSome(read)) pieces.push({ how: "read(1000)", bytes: read.value })
        const streamed = yield* Stream.runCollect(Stream.take(b.input.stream, 1))
        for (const bytes of streamed) pieces.push({ how: "stream", bytes })
        pieces.push({ how: "readAll", bytes: yield* bounded("readAll", b.input.readAll) })

        expect(pieces.map(({ bytes, how }) => `${how}: ${kindOf(bytes)}`)).toEqual(
          pieces.map(({ how }) => `${how}: Uint8Array`)
        )
        let offset = 0
        for (const { bytes, how } of pieces) {
          expect(throughDataView(bytes), `${how} at ${offset}`).toEqual(
            Array.from(payload.subarray(offset, offset + bytes.length))
          )
          offset += bytes.length
        }
        expect(offset).toBe(payload.length)
        expect(Chunk.size(streamed)).toBe(1)
      }).pipe(Effect.provide(TestLayer)))
  }
})

describe("after STARTTLS ends (closeOriginal: false)", () => {
  it.scopedLive("the plain ports hand out plain Uint8Arrays again", () =>
    Effect.gen(function*() {
      const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
        const plain = yield* NodeSsl.tcpAccept(listener)
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* Ssl.wrap(plain, { mode: "accept", context: yield* serverContext() })
          yield* conn.output.write("secure\n")
          yield* conn.output.close
          yield* conn.input.readAll
        }))
        yield* plain.output.write(Buffer.from("xxplain after TLS\n").subarray(2))
        yield* plain.input.read()
      })))
      const plain = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.wrap(plain, { mode: "connect", hostname: "localhost", context: yield* clientContext() })
        expect(yield* conn.input.readLine).toEqual(Option.some("secure"))
        yield* conn.output.close
        expect(yield* conn.input.read()).toEqual(Option.none())
      }))
      const after = yield* bounded("the plaintext", plain.input.readExactly(16))
      expect(kindOf(after)).toBe("Uint8Array")
      expect(throughDataView(after)).toEqual(Array.from(Buffer.from("plain after TLS\n")))
    }).pipe(Effect.provide(TestLayer)))
})

// ---------------------------------------------------------------------------------------------
// A PostgreSQL-style exchange: SSLRequest in plaintext, then TLS, then length-prefixed messages

const sslRequestCode = 80877103

/** A message: a type byte, then a big-endian int32 length that counts itself and the body. */
const message = (type: string, body: Uint8Array | string): Buffer => {
  const payload = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body)
  const header = Buffer.alloc(5)
  header.write(type, 0, "latin1")
  header.writeInt32BE(4 + payload.length, 1)
  return Buffer.concat([header, payload])
}

/** Reads one message as a PostgreSQL driver does: readExactly, and a DataView for the length. */
const readMessage = (input: Port.Input) =>
  Effect.gen(function*() {
    const header = yield* input.readExactly(5)
    const view = new DataView(header.slice().buffer)
    const type = String.fromCharCode(view.getUint8(0))
    const length = view.getInt32(1)
    if (length < 4 || length > 1024 * 1024) {
      return yield* Effect.fail(new Error(`message ${type}: a length of ${length}`))
    }
    const body = yield* input.readExactly(length - 4)
    return { type, body: new TextDecoder().decode(body) }
  })

describe("a PostgreSQL-style client and server (SSLRequest, wrap, length-prefixed messages)", () => {
  it.scopedLive("both sides decode every length with a DataView over .slice().buffer", () =>
    Effect.gen(function*() {
      const listener = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const plain = yield* NodeSsl.tcpAccept(listener)
        const request = yield* plain.input.readExactly(8)
        const view = new DataView(request.slice().buffer)
        const startup = [view.getInt32(0), view.getInt32(4)]
        yield* plain.output.write("S")
        const conn = yield* Ssl.wrap(plain, { mode: "accept", context: yield* serverContext() })
        // Several messages in one write, as a server sends them: they arrive in one record.
        yield* conn.output.write(Buffer.concat([
          message("R", Buffer.from([0, 0, 0, 0])),
          message("S", "server_version\u000016.0\u0000"),
          message("S", "client_encoding\u0000UTF8\u0000"),
          message("Z", "I")
        ]))
        const query = yield* readMessage(conn.input)
        yield* conn.output.write(Buffer.concat([message("C", "SELECT 1\u0000"), message("Z", "I")]))
        return { startup, query }
      })))

      const plain = yield* NodeSsl.tcpConnect("127.0.0.1", listener.address.port)
      const request = Buffer.alloc(8)
      request.writeInt32BE(8, 0)
      request.writeInt32BE(sslRequestCode, 4)
      yield* plain.output.write(request)
      expect(new TextDecoder().decode(yield* plain.input.readExactly(1))).toBe("S")
      const conn = yield* Ssl.wrap(plain, { mode: "connect", hostname: "localhost", context: yield* clientContext() })
      const greeting = []
      for (let done = false; !done;) {
        const next = yield* bounded("a message", readMessage(conn.input))
        greeting.push(next)
        done = next.type === "Z"
      }
      expect(greeting).toEqual([
        { type: "R", body: "\u0000\u0000\u0000\u0000" },
        { type: "S", body: "server_version\u000016.0\u0000" },
        { type: "S", body: "client_encoding\u0000UTF8\u0000" },
        { type: "Z", body: "I" }
      ])
      yield* conn.output.write(message("Q", "SELECT 1\u0000"))
      expect(yield* bounded("the reply", readMessage(conn.input))).toEqual({ type: "C", body: "SELECT 1\u0000" })
      expect(yield* bounded("ready", readMessage(conn.input))).toEqual({ type: "Z", body: "I" })
      expect(yield* bounded("the server", Fiber.join(server))).toEqual({
        startup: [8, sslRequestCode],
        query: { type: "Q", body: "SELECT 1\u0000" }
      })
    }).pipe(Effect.provide(TestLayer)))
})

// ---------------------------------------------------------------------------------------------
// Writes

describe("a write that returned leaves the caller's array free", () => {
  // Large writes, quickly, so that the socket queues some of them behind the first.
  const blocks = 8
  const blockSize = 512 * 1024
  for (const transport of transports) {
    it.scopedLive(`${transport.name}: each buffer is overwritten right after its write; the peer gets what was written`, () =>
      Effect.gen(function*() {
        const [a, b] = yield* transport.pair
        const received = yield* Effect.fork(b.input.readAll)
        for (let i = 0; i < blocks; i++) {
          const buffer = Buffer.alloc(blockSize, i + 1)
          yield* a.output.write(buffer)
          buffer.fill(0xee)
        }
        // A plain Uint8Array too, the same way.
        const last = new Uint8Array(blockSize).fill(blocks + 1)
        yield* a.output.write(last)
        last.fill(0xee)
        yield* a.output.close
        const bytes = yield* bounded("the peer's readAll", Fiber.join(received))
        expect(bytes.length).toBe((blocks + 1) * blockSize)
        const wrong: Array<string> = []
        for (let i = 0; i <= blocks; i++) {
          const block = bytes.subarray(i * blockSize, (i + 1) * blockSize)
          const bad = block.findIndex((byte) => byte !== i + 1)
          if (bad >= 0) wrong.push(`block ${i}: byte ${bad} is ${block[bad]}`)
        }
        expect(wrong).toEqual([])
      }).pipe(Effect.provide(TestLayer)))
  }
})

describe("small writes, which the ports join into larger socket writes", () => {
  for (const transport of transports) {
    it.scopedLive(`${transport.name}: small and large writes arrive whole and in order, each buffer overwritten after its write`, () =>
      Effect.gen(function*() {
        const [a, b] = yield* transport.pair
        const received = yield* Effect.fork(b.input.readAll)
        // Sizes around the joining buffer's edges: single bytes, 1 KiB, odd sizes, writes larger
        // than what is joined, and a run long enough to fill several joined writes.
        const sizes = [
          1,
          1024,
          1,
          3000,
          70 * 1024,
          ...Array.from({ length: 300 }, (_, i) => 1 + (i * 997) % 2048),
          200_000,
          7
        ]
        // Byte k of the stream is k mod 251.
        let n = 0
        for (const size of sizes) {
          const buffer = Buffer.alloc(size)
          for (let i = 0; i < size; i++) buffer[i] = n++ % 251
          yield* a.output.write(buffer)
          buffer.fill(0xee)
        }
        yield* a.output.close
        const bytes = yield* bounded("the peer's readAll", Fiber.join(received))
        expect(bytes.length).toBe(n)
        expect(bytes.findIndex((byte, k) => byte !== k % 251)).toBe(-1)
      }).pipe(Effect.provide(TestLayer)))

    it.scopedLive(`${transport.name}: a small write queued behind a large one goes out while its writer waits for the answer`, () =>
      Effect.gen(function*() {
        const [a, b] = yield* transport.pair
        // The peer answers once it has the large write and the small one after it: nothing but
        // the writer's own wait for that answer follows the small write.
        const answer = yield* Effect.fork(Effect.gen(function*() {
          const got = yield* b.input.readExactly(512 * 1024 + 4)
          yield* b.output.write(got.subarray(got.length - 4))
        }))
        yield* a.output.write(new Uint8Array(512 * 1024))
        yield* a.output.write(new TextEncoder().encode("ping"))
        const echoed = yield* bounded("the answer", a.input.readExactly(4))
        expect(new TextDecoder().decode(echoed)).toBe("ping")
        yield* Fiber.join(answer)
      }).pipe(Effect.provide(TestLayer)))
  }
})

/**
 * A TLS connection's client end, to be opened in a scope of its own, and its server end, accepted
 * in the test's scope: the client's scope can end while the server reads on.
 */
interface Ends {
  readonly name: string
  readonly ends: Effect.Effect<
    {
      readonly connect: Effect.Effect<Ssl.Connection, unknown, Scope.Scope | Ssl.Ssl>
      readonly accepted: Fiber.Fiber<Ssl.Connection, unknown>
    },
    unknown,
    Scope.Scope | Ssl.Ssl | SslContextDeps
  >
}

const wrappedEnds = (pair: Effect.Effect<readonly [Port.Duplex, Port.Duplex], unknown, Scope.Scope | Ssl.Ssl>) =>
  Effect.gen(function*() {
    const [a, b] = yield* pair
    const server = yield* serverContext()
    const client = yield* clientContext()
    const accepted = yield* Effect.fork(Ssl.wrap(b, { mode: "accept", context: server }))
    return { connect: Ssl.wrap(a, { mode: "connect", hostname: "localhost", context: client }), accepted }
  })

const allEnds: ReadonlyArray<Ends> = [
  { name: "TLS on the native handle", ends: tlsEnds(false) },
  { name: "TLS over the JS-stream transport (setDetectTruncation)", ends: tlsEnds(true) },
  { name: "Ssl.wrap over Port.pipe", ends: wrappedEnds(Port.pipe({ capacity: 4096 })) },
  { name: "Ssl.wrap over TCP ports (STARTTLS)", ends: wrappedEnds(tcpPair) }
]

describe("small writes the ports have joined but not yet handed to the socket", () => {
  // A large write keeps the socket busy, so the small ones after it are joined; the scope ends (or
  // the output is abandoned) before the writer ever yields, so before the joined bytes are due.
  const sizes = [256 * 1024, ...Array.from({ length: 200 }, (_, i) => 1 + (i * 37) % 300)]
  const total = sizes.reduce((sum, size) => sum + size, 0)
  const lastWords = (a: Ssl.Connection, abandon: boolean) =>
    Effect.gen(function*() {
      let n = 0
      for (const size of sizes) {
        const buffer = Buffer.alloc(size)
        for (let i = 0; i < size; i++) buffer[i] = n++ % 251
        yield* a.output.write(buffer)
      }
      if (abandon) yield* a.abandon
      return n
    })

  for (const { ends, name } of allEnds) {
    it.scopedLive(`${name}: they reach the peer, before the end, when the scope ends right after them`, () =>
      Effect.gen(function*() {
        const { accepted, connect } = yield* ends
        const received = yield* Effect.fork(Effect.flatMap(Fiber.join(accepted), (b) => b.input.readAll))
        const n = yield* Effect.scoped(Effect.flatMap(connect, (a) => lastWords(a, false)))
        const bytes = yield* bounded("the peer's readAll", Fiber.join(received))
        expect(bytes.length).toBe(n)
        expect(bytes.findIndex((byte, k) => byte !== k % 251)).toBe(-1)
      }).pipe(Effect.provide(TestLayer)))
  }

  it.scopedLive("Ssl.wrap over Port.pipe: they reach the peer when the output is abandoned right after them", () =>
    Effect.gen(function*() {
      const { accepted, connect } = yield* wrappedEnds(Port.pipe({ capacity: 4096 }))
      // No close_notify, and the pipe outlives the connection: the peer reads what was written.
      const received = yield* Effect.fork(Effect.flatMap(Fiber.join(accepted), (b) => b.input.readExactly(total)))
      const n = yield* Effect.scoped(Effect.flatMap(connect, (a) => lastWords(a, true)))
      const bytes = yield* bounded("the peer's readAll", Fiber.join(received))
      expect(bytes.length).toBe(n)
      expect(bytes.findIndex((byte, k) => byte !== k % 251)).toBe(-1)
    }).pipe(Effect.provide(TestLayer)))
})

describe("the last writes before a connection's scope ends reach the peer", () => {
  // A socket closed with bytes it has not read (a TLS 1.3 ticket that came after the handshake) is
  // reset, and the reset takes with it what the peer has not read yet: the scope's end must wait
  // for the peer's close before it lets the socket go.
  const size = 20 * 16 * 1024
  for (const { ends, name } of [{ name: "TLS on the native handle", ends: tlsEnds(false) }, ...allEnds.slice(1)]) {
    for (const closeFirst of [false, true]) {
      const how = closeFirst ? "output.close, then the scope's end" : "the scope's end alone"
      it.scopedLive(`${name}: the client writes, then ${how}; the server reads everything`, () =>
        Effect.gen(function*() {
          const { accepted, connect } = yield* ends
          const received = yield* Effect.fork(Effect.flatMap(Fiber.join(accepted), (b) => b.input.readAll))
          yield* Effect.scoped(Effect.gen(function*() {
            const a = yield* connect
            for (let offset = 0; offset < size; offset += 16 * 1024) {
              yield* a.output.write(new Uint8Array(16 * 1024).fill((offset >> 14) + 1))
            }
            if (closeFirst) yield* a.output.close
          }))
          const bytes = yield* bounded("the peer's readAll", Fiber.join(received))
          expect(bytes.length).toBe(size)
          expect(bytes.findIndex((byte, k) => byte !== (k >> 14) + 1)).toBe(-1)
        }).pipe(Effect.provide(TestLayer)))
    }
  }
})

// ---------------------------------------------------------------------------------------------
// Both ways at once

const heldSize = 16 * 1024 * 1024

/** Forks a write of `size` bytes of `fill`, and waits until it is held back (a peer not reading). */
const heldWrite = (output: Port.Output, fill: number, size = heldSize) =>
  Effect.gen(function*() {
    const writer = yield* Effect.fork(output.write(new Uint8Array(size).fill(fill)))
    let still = 0
    yield* eventually(
      `write of ${fill}s held back`,
      Effect.map(Fiber.status(writer), (status) => (still = status._tag === "Suspended" ? still + 1 : 0)),
      (polls) => polls >= 20
    )
    return writer
  })

describe("full duplex and backpressure", () => {
  it.scopedLive("16 MiB each way at once over one connection, one fiber reading while another writes", () =>
    Effect.gen(function*() {
      const [client, server] = yield* tlsPair(false)
      const size = 16 * 1024 * 1024
      const up = new Uint8Array(Crypto.randomBytes(size))
      const down = new Uint8Array(Crypto.randomBytes(size))
      const sha = (bytes: Uint8Array) => Crypto.createHash("sha256").update(bytes).digest("hex")
      const send = (conn: Ssl.Connection, bytes: Uint8Array) =>
        Effect.gen(function*() {
          for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
            yield* conn.output.write(bytes.subarray(offset, offset + 64 * 1024))
          }
          yield* conn.output.close
        })
      const receive = (conn: Ssl.Connection) =>
        Effect.gen(function*() {
          const hash = Crypto.createHash("sha256")
          let count = 0
          while (true) {
            const chunk = yield* conn.input.read()
            if (Option.isNone(chunk)) return { count, sha: hash.digest("hex") }
            hash.update(chunk.value)
            count += chunk.value.length
          }
        })
      const [, , atServer, atClient] = yield* Effect.all([
        send(client, up),
        send(server, down),
        receive(server),
        receive(client)
      ], { concurrency: "unbounded" })
      expect(atServer).toEqual({ count: size, sha: sha(up) })
      expect(atClient).toEqual({ count: size, sha: sha(down) })
    }).pipe(Effect.provide(TestLayer)))

  // A writer held back by a reader that does not read, then released: memory stays bounded while
  // it waits, and everything arrives, in order. Small writes are joined into larger socket writes
  // by the ports: what they queue must count for what it holds, whether the writer writes its
  // pieces back to back or yields between them (a writer fed by a queue, say).
  // Memory is measured after a full collection: what is held, not the garbage an earlier test left.
  V8.setFlagsFromString("--expose-gc")
  const collect = Vm.runInNewContext("gc") as () => void
  const heldBack = (pair: Transport["pair"], size: number, total: number, yieldBetween: boolean) =>
    Effect.gen(function*() {
      const [client, server] = yield* pair
      const chunk = new Uint8Array(size).fill(0x5a)
      collect()
      const memoryBefore = process.memoryUsage()
      let written = 0
      const writer = yield* Effect.fork(Effect.gen(function*() {
        while (written < total) {
          yield* client.output.write(chunk)
          written += chunk.length
          if (yieldBetween) yield* Effect.yieldNow()
        }
        yield* client.output.close
      }))
      // Wait until the writer is stuck: suspended, and no progress over a few polls.
      let last = -1
      let still = 0
      yield* eventually(
        "writer held back",
        Effect.gen(function*() {
          const status = yield* Fiber.status(writer)
          still = status._tag === "Suspended" && written === last ? still + 1 : 0
          last = written
          return { still, written }
        }),
        (s) => s.still >= 20,
        "20 seconds"
      )
      collect()
      const memoryHeld = process.memoryUsage()
      expect(written).toBeGreaterThan(0)
      expect(written).toBeLessThan(Math.min(total, 32 * 1024 * 1024))
      expect(memoryHeld.arrayBuffers - memoryBefore.arrayBuffers).toBeLessThan(64 * 1024 * 1024)
      expect(memoryHeld.rss - memoryBefore.rss).toBeLessThan(128 * 1024 * 1024)
      // The reader starts: everything arrives, in order.
      let received = 0
      let intact = true
      while (true) {
        const next = yield* server.input.read()
        if (Option.isNone(next)) break
        received += next.value.length
        if (intact && next.value.some((byte) => byte !== 0x5a)) intact = false
      }
      yield* Fiber.join(writer)
      expect(received).toBe(total)
      expect(intact).toBe(true)
    }).pipe(Effect.provide(TestLayer))

  it.scopedLive("a writer whose reader does not read is suspended with bounded memory; everything arrives later", () =>
    heldBack(tlsPair(false), 1024 * 1024, 256 * 1024 * 1024, false))

  it.scopedLive("the same with 1 KiB writes back to back", () =>
    heldBack(tlsPair(false), 1024, 16 * 1024 * 1024, false))

  for (const [name, pair] of [["TLS", tlsPair(false)], ["plain TCP ports", tcpPair]] as const) {
    it.scopedLive(`${name}: the same with 256-byte writes and a yield after each (a small socket write must not hold 64 KiB)`, () =>
      heldBack(pair, 256, 16 * 1024 * 1024, true))
  }

  // The first writer to wait for room waits without an interruption handler (socketPorts.ts,
  // `makeWaitForRoom`): interrupted, it leaves its wake-up in the output's slot, and the writers
  // after it must still be woken, each once, with their bytes in order.
  it.scopedLive("writes interrupted while they wait for room: the writes after them wait, then go, in order", () =>
    Effect.gen(function*() {
      const [client, server] = yield* tlsPair(false)
      // The first two are interrupted where they wait: the first had queued its bytes (it waits
      // for them to go), which arrive; the second waited for the queue before it wrote, so none of
      // its bytes go (a write to a socket arrives whole or not at all).
      const first = yield* heldWrite(client.output, 1)
      yield* Fiber.interrupt(first)
      const second = yield* heldWrite(client.output, 2)
      yield* Fiber.interrupt(second)
      const third = yield* heldWrite(client.output, 3)
      const reading = yield* Effect.fork(server.input.readExactly(2 * heldSize))
      yield* Fiber.join(third)
      const received = yield* Fiber.join(reading)
      for (const [i, fill] of [1, 3].entries()) {
        const part = received.subarray(i * heldSize, (i + 1) * heldSize)
        expect(part.every((byte) => byte === fill), `write of ${fill}s`).toBe(true)
      }
      // and the output goes on as before
      yield* client.output.write("after")
      expect(new TextDecoder().decode(yield* server.input.readExactly(5))).toBe("after")
    }).pipe(Effect.provide(TestLayer)))

  // The scope's end destroys the socket before its 'close' event: a writer woken then must not
  // take the socket for open and report bytes as written that never went.
  for (const detectTruncation of [false, true]) {
    const name = detectTruncation ? "TLS over the JS-stream transport" : "TLS on the native handle"
    it.scopedLive(`${name}: a write still waiting to hand over its bytes when the connection's scope ends fails`, () =>
      Effect.gen(function*() {
        const { accepted, connect } = yield* tlsEnds(detectTruncation)
        const scope = yield* Scope.make()
        const client = yield* Scope.extend(connect, scope)
        yield* Fiber.join(accepted) // the server's end never reads
        // The first write's bytes are queued, and it waits for them to go; the second waits for
        // the queue to go before it hands over its own.
        const first = yield* heldWrite(client.output, 1)
        const second = yield* heldWrite(client.output, 2)
        yield* Scope.close(scope, Exit.void)
        yield* bounded("the first write", Fiber.await(first))
        const secondExit = yield* bounded("the second write", Fiber.await(second))
        expect(secondExit).toMatchObject(Exit.fail(new SslError.IoError({ operation: "write", reason: "Closed" })))
      }).pipe(Effect.provide(TestLayer)))
  }

  // Both ends allow half-open connections: once our end has gone after the peer's, Node destroys the
  // socket at once, before its 'close' event.
  it.scopedLive("the peer closed first, we read its end, write and close: flush still succeeds", () =>
    Effect.gen(function*() {
      const [a, b] = yield* tlsPair(false)
      yield* b.output.close
      expect(yield* a.input.read()).toEqual(Option.none())
      yield* a.output.write("last")
      yield* a.output.close
      expect(yield* Effect.exit(a.output.flush)).toEqual(Exit.void)
      expect(new TextDecoder().decode(yield* b.input.readAll)).toBe("last")
    }).pipe(Effect.provide(TestLayer)))

  // STARTTLS takes the socket from the plain ports: no 'drain' reaches them any more.
  it.scopedLive("plain TCP ports: a write waiting for room when Ssl.wrap takes the socket returns; its bytes come before TLS", () =>
    Effect.gen(function*() {
      const [a, b] = yield* tcpPair
      const size = 64 * 1024 * 1024
      const plainWrite = yield* heldWrite(a.output, 1, size)
      const plainRead = yield* Effect.fork(b.input.readExactly(size))
      // The client's TLS starts while the plain write waits: its ClientHello follows those bytes.
      const clientContext_ = yield* clientContext()
      const connecting = yield* Effect.fork(
        Ssl.wrap(a, { mode: "connect", context: clientContext_, hostname: "localhost" })
      )
      const received = yield* bounded("the plain read", Fiber.join(plainRead))
      expect(received.every((byte) => byte === 1)).toBe(true)
      const server = yield* Ssl.wrap(b, { mode: "accept", context: yield* serverContext() })
      const client = yield* bounded("the client's handshake", Fiber.join(connecting))
      expect(yield* bounded("the plain write", Fiber.await(plainWrite))).toEqual(Exit.void)
      // TLS works over what follows, and the plain ports refuse writes meanwhile
      yield* client.output.write("tls")
      expect(new TextDecoder().decode(yield* server.input.readExactly(3))).toBe("tls")
      expect(yield* Effect.flip(a.output.write("plain"))).toMatchObject({ _tag: "IoError", reason: "Closed" })
    }).pipe(Effect.provide(TestLayer)))
})
