/**
 * Lifetimes: what a connection's scope, a listener's scope and `output.close` do to the wire and to
 * the process (close_notify or not, truncation, sockets and file descriptors released,
 * half-close), connections that end before their accept, and a peer that reads nothing, which
 * cannot hold a scope open. (Ssl.serve's connections: Serve.test.ts.)
 */
import { Ssl, SslContext } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Scheduler from "effect/Scheduler"
import * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { drain, localListener } from "../../core/test/helpers/Connections.js"
import { clientContext, serverContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { rawClient, rawPeer } from "../../core/test/helpers/RawPeers.js"
import { backTo, eventually, leakCheck, resources, suspended } from "../../core/test/helpers/Resources.js"

const detectingListener = Effect.flatMap(
  Effect.tap(serverContext(), (context) => SslContext.setDetectTruncation(context, true)),
  (context) => Ssl.listen(0, { hostname: "127.0.0.1", context })
)

/** Accepts one connection in its own scope and drains its input; the result is how it ended. */
const acceptAndDrain = (listener: Ssl.Listener) =>
  Effect.fork(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => drain(conn.input))))

const connectTo = (listener: Ssl.Listener) =>
  Effect.flatMap(clientContext(), (context) => Ssl.connect("localhost", listener.address.port, context))

// What node:tls and the fixtures keep open once loaded is part of the baseline.
const leaks = leakCheck({ warm: true })

describe("a connection's scope", () => {
  it.scopedLive("ending with success sends close_notify and releases both sockets", () =>
    Effect.gen(function*() {
      const before = yield* resources
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* localListener
        const server = yield* acceptAndDrain(listener)
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* connectTo(listener)
          yield* conn.output.write("last words")
        }))
        // The scope ended while the transport was writable: a clean TLS end, not a truncation.
        expect(yield* Fiber.join(server)).toEqual({ data: "last words", end: "eof" })
      }))
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("ending with a failure sends close_notify and releases both sockets", () =>
    Effect.gen(function*() {
      const before = yield* resources
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* localListener
        const server = yield* acceptAndDrain(listener)
        const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
          const conn = yield* connectTo(listener)
          yield* conn.output.write("before the failure")
          return yield* Effect.fail("handler failed" as const)
        })))
        expect(exit).toEqual(Exit.fail("handler failed"))
        expect(yield* Fiber.join(server)).toEqual({ data: "before the failure", end: "eof" })
      }))
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("ending by interruption (of a pending read) sends close_notify and releases both sockets", () =>
    Effect.gen(function*() {
      const before = yield* resources
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* localListener
        const connected = yield* Deferred.make<void>()
        const server = yield* acceptAndDrain(listener)
        const client = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const conn = yield* connectTo(listener)
          yield* conn.output.write("then blocked")
          yield* Deferred.succeed(connected, undefined)
          return yield* conn.input.read() // the server never writes: blocks here
        })))
        yield* Deferred.await(connected)
        yield* suspended(client)
        yield* Fiber.interrupt(client)
        expect(yield* Fiber.join(server)).toEqual({ data: "then blocked", end: "eof" })
      }))
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("the server side's scope ending is a clean end for the client too", () =>
    Effect.gen(function*() {
      const before = yield* resources
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* localListener
        const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const conn = yield* Ssl.accept(listener)
          yield* conn.output.write("bye")
          return yield* Effect.fail("server handler failed" as const)
        })))
        const conn = yield* connectTo(listener)
        expect(yield* drain(conn.input)).toEqual({ data: "bye", end: "eof" })
        expect(yield* Effect.exit(Fiber.join(server))).toEqual(Exit.fail("server handler failed"))
      }))
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  // A client that drops TCP without close_notify: `abandon` (Racket's ssl-abandon-port) closes the
  // output without close_notify, and the scope then destroys the socket: the server sees a bare FIN.
  const abandoning = (listener: Ssl.Listener) =>
    Effect.scoped(Effect.gen(function*() {
      const conn = yield* connectTo(listener)
      yield* conn.output.write("partial")
      yield* conn.abandon
    }))

  // A node:tls client that destroys its socket after writing: no end(), no close_notify.
  const destroying = (listener: Ssl.Listener) =>
    Effect.async<void, Error>((resume) => {
      const ca = Fs.readFileSync(fixture("root-ca.pem"))
      const socket = Tls.connect({ host: "127.0.0.1", port: listener.address.port, servername: "localhost", ca })
      socket.on("error", (error) => resume(Effect.fail(error)))
      socket.on("secureConnect", () => {
        socket.write("raw", () => {
          socket.destroy()
          resume(Effect.void)
        })
      })
    })

  it.scopedLive("by default a TCP close without close_notify ends input like a clean end, as in node:tls", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const server = yield* acceptAndDrain(listener)
      yield* abandoning(listener)
      expect(yield* Fiber.join(server)).toEqual({ data: "partial", end: "eof" })
      const again = yield* acceptAndDrain(listener)
      yield* destroying(listener)
      expect(yield* Fiber.join(again)).toEqual({ data: "raw", end: "eof" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("with setDetectTruncation, a peer that drops TCP without close_notify is a truncation, not an end of input", () =>
    Effect.gen(function*() {
      const listener = yield* detectingListener
      const server = yield* acceptAndDrain(listener)
      yield* abandoning(listener)
      expect(yield* Fiber.join(server)).toEqual({ data: "partial", end: "IoError:TruncatedEof" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("with setDetectTruncation, a node:tls peer that destroys its socket is a truncation too", () =>
    Effect.gen(function*() {
      const listener = yield* detectingListener
      const server = yield* acceptAndDrain(listener)
      yield* destroying(listener)
      expect(yield* Fiber.join(server)).toEqual({ data: "raw", end: "IoError:TruncatedEof" })
    }).pipe(Effect.provide(TestLayer)))

  /** Accepts one client, writes "partial" and drops TCP without close_notify (abandon, then its scope ends). */
  const abandoningServer = (listener: Ssl.Listener) =>
    Effect.fork(Effect.scoped(Effect.gen(function*() {
      const conn = yield* Ssl.accept(listener)
      yield* conn.output.write("partial")
      yield* conn.abandon
    })))

  it.scopedLive("by default a server that drops TCP without close_notify is a clean end for the client too", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      yield* abandoningServer(listener)
      const conn = yield* connectTo(listener)
      expect(yield* drain(conn.input)).toEqual({ data: "partial", end: "eof" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("with setDetectTruncation on the client, a server that drops TCP without close_notify is a truncation", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      yield* abandoningServer(listener)
      const client = yield* clientContext()
      yield* SslContext.setDetectTruncation(client, true)
      const conn = yield* Ssl.connect("localhost", listener.address.port, client)
      expect(yield* drain(conn.input)).toEqual({ data: "partial", end: "IoError:TruncatedEof" })
      // and a close_notify is still a clean end
      const clean = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.accept(listener)
        yield* conn.output.write("whole")
      })))
      const second = yield* Ssl.connect("localhost", listener.address.port, client)
      expect(yield* drain(second.input)).toEqual({ data: "whole", end: "eof" })
      yield* Fiber.join(clean)
    }).pipe(Effect.provide(TestLayer)))
})

describe("why truncation detection reads TLS through a JS stream", () => {
  it.live("node:tls over a socket's native handle reports close_notify and a bare TCP FIN alike", () =>
    Effect.gen(function*() {
      // Node 20's C++ TLS layer emits the same 'end' for both; only the transport's own end,
      // seen from JS, tells them apart (SocketFeed + watchEnd). If this ever fails, Node
      // distinguishes them itself and the library could hand node:tls the handle again.
      const key = Fs.readFileSync(fixture("server.key"))
      const cert = Fs.readFileSync(fixture("server-chain.pem"))
      const ca = Fs.readFileSync(fixture("root-ca.pem"))
      const endings = yield* Effect.forEach(
        ["close_notify", "bare FIN"] as const,
        (how) =>
          Effect.async<ReadonlyArray<string>, Error>((resume) => {
            const events: Array<string> = []
            const server = Tls.createServer({ key, cert }, (socket) => {
              socket.on("error", () => {})
              socket.write("data", () => {
                if (how === "close_notify") socket.end()
                // The TCP socket under the TLS one: ending it sends a FIN and no close_notify.
                else (socket as unknown as { _parent: Net.Socket })._parent.end()
              })
            })
            server.listen(0, "127.0.0.1", () => {
              const port = (server.address() as Net.AddressInfo).port
              const tcp = Net.connect({ host: "127.0.0.1", port }, () => {
                const client = Tls.connect({ socket: tcp, servername: "localhost", ca })
                client.on("data", () => events.push("data"))
                client.on("error", (error) => events.push(`error ${(error as { code?: string }).code}`))
                client.on("end", () => events.push("end"))
                client.on("close", () => {
                  server.close()
                  resume(Effect.succeed(events))
                })
              })
            })
          })
      )
      expect(endings[0]).toEqual(endings[1])
      expect(endings[0]).toEqual(["data", "end"])
    }))
})

describe("output.close", () => {
  it.scopedLive("sends close_notify and leaves the input readable: the peer answers after it", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.accept(listener)
        const request = yield* drain(conn.input) // ends at the client's close_notify
        yield* conn.output.write(`got ${request.data} (${request.end})`)
        yield* conn.output.close
      })))
      const conn = yield* connectTo(listener)
      yield* conn.output.write("request")
      yield* conn.output.close
      expect(yield* drain(conn.input)).toEqual({ data: "got request (eof)", end: "eof" })
      yield* Fiber.join(server)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a write after output.close fails with IoError Closed; closing twice is fine", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const server = yield* acceptAndDrain(listener)
      const conn = yield* connectTo(listener)
      yield* conn.output.close
      yield* conn.output.close
      const error = yield* Effect.flip(conn.output.write("too late"))
      expect(error).toMatchObject({ _tag: "IoError", operation: "write", reason: "Closed" })
      expect(yield* Fiber.join(server)).toEqual({ data: "", end: "eof" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("input.close drops unread bytes and makes later reads fail with IoError Closed", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const server = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.accept(listener)
        yield* conn.output.write("unread")
        return yield* drain(conn.input)
      })))
      const conn = yield* connectTo(listener)
      yield* conn.input.close
      const error = yield* Effect.flip(conn.input.read())
      expect(error).toMatchObject({ _tag: "IoError", operation: "read", reason: "Closed" })
      // The output still works after the input closed.
      yield* conn.output.write("still writing")
      yield* conn.output.close
      expect(yield* Fiber.join(server)).toEqual({ data: "still writing", end: "eof" })
    }).pipe(Effect.provide(TestLayer)))
})

describe("a listener's scope", () => {
  it.scopedLive("stops listening: a new connect is refused", () =>
    Effect.gen(function*() {
      const before = yield* resources
      const port = yield* Effect.scoped(Effect.map(localListener, (listener) => listener.address.port))
      const error = yield* Effect.flip(Effect.scoped(Ssl.connect("127.0.0.1", port, yield* clientContext())))
      expect(error).toMatchObject({ _tag: "ConnectError", reason: "Refused", port })
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("destroys the TCP connections it has not accepted", () =>
    Effect.gen(function*() {
      const before = yield* resources
      yield* Effect.scoped(Effect.gen(function*() {
        const listenerScope = yield* Scope.make()
        const listener = yield* Scope.extend(localListener, listenerScope)
        // Connected (the kernel completed the TCP handshake) but never accepted.
        const client = yield* rawClient(listener.address.port)
        yield* Scope.close(listenerScope, Exit.void)
        yield* client.closed
        expect(client.received()).toBe(0)
      }))
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("Ssl.close stops it: a waiting accept and later ones fail with ListenError Closed", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const waiting = yield* Effect.fork(Effect.scoped(Ssl.accept(listener)))
      yield* suspended(waiting)
      yield* Ssl.close(listener)
      yield* Ssl.close(listener)
      const first = yield* Effect.flip(Fiber.join(waiting))
      expect(first).toMatchObject({ _tag: "ListenError", reason: "Closed" })
      const later = yield* Effect.flip(Effect.scoped(Ssl.accept(listener)))
      expect(later).toMatchObject({ _tag: "ListenError", reason: "Closed" })
      const refused = yield* Effect.flip(Effect.scoped(Ssl.connect("127.0.0.1", listener.address.port)))
      expect(refused).toMatchObject({ _tag: "ConnectError", reason: "Refused" })
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("connections already accepted outlive it", () =>
    Effect.gen(function*() {
      const listenerScope = yield* Scope.make()
      const listener = yield* Scope.extend(localListener, listenerScope)
      const accepted = yield* Effect.fork(Ssl.accept(listener))
      const client = yield* connectTo(listener)
      const server = yield* Fiber.join(accepted)
      yield* Scope.close(listenerScope, Exit.void)
      yield* server.output.write("after the listener closed\n")
      expect(yield* client.input.readLine).toEqual(Option.some("after the listener closed"))
      yield* client.output.write("still here\n")
      expect(yield* server.input.readLine).toEqual(Option.some("still here"))
    }).pipe(Effect.provide(TestLayer)))
})

describe("a connection that ends before its accept", () => {
  it.scopedLive("a client that half-closes before its accept is dropped; the next accept takes the next client", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const before = yield* resources
      // Connects, sends FIN at once, and closes its own end once the server has closed its.
      const gone = yield* rawPeer(listener.address.port, "", "end")
      expect(gone).toBe(0)
      // The server side closed it without an accept: nothing of it is left.
      yield* backTo(before)
      const accepted = yield* Effect.fork(Ssl.accept(listener))
      const conn = yield* connectTo(listener)
      const server = yield* Fiber.join(accepted)
      yield* conn.output.write("the next client\n")
      expect(yield* server.input.readLine).toEqual(Option.some("the next client"))
    }).pipe(Effect.provide(TestLayer)))

  /** Server-side sockets of `port` the kernel has seen a FIN on (CLOSE_WAIT), from /proc/net/tcp. */
  const closeWaiting = (port: number) =>
    Effect.sync(() => {
      const hex = port.toString(16).toUpperCase().padStart(4, "0")
      return ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((file) => Fs.readFileSync(file, "utf8").split("\n").slice(1))
        .filter((line) => {
          const fields = line.trim().split(/\s+/)
          return fields[1]?.endsWith(`:${hex}`) === true && fields[3] === "08"
        }).length
    })

  // One turn of the event loop after the kernel has it, Node has read the FIN and emitted 'end'.
  const nextTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve))))

  it.scopedLive("plain TCP: a connection that ended before its accept reads as ended", () =>
    Effect.gen(function*() {
      const tcp = yield* NodeSsl.tcpListen(0, { hostname: "127.0.0.1" })
      const client = yield* Effect.acquireRelease(
        Effect.async<Net.Socket>((resume) => {
          const socket = Net.connect({ host: "127.0.0.1", port: tcp.address.port, allowHalfOpen: true })
          socket.on("error", () => {})
          socket.once("connect", () => {
            socket.end("last words")
            resume(Effect.succeed(socket))
          })
        }),
        (socket) => Effect.sync(() => socket.destroy())
      )
      expect(client.writableEnded).toBe(true)
      yield* eventually("the FIN at the server", closeWaiting(tcp.address.port), (n) => n === 1)
      yield* nextTurn
      const duplex = yield* NodeSsl.tcpAccept(tcp)
      expect(new TextDecoder().decode(yield* duplex.input.readAll)).toBe("last words")
      // And one that sent nothing: its first read is the end.
      const silent = yield* Effect.acquireRelease(
        Effect.async<Net.Socket>((resume) => {
          const socket = Net.connect({ host: "127.0.0.1", port: tcp.address.port, allowHalfOpen: true })
          socket.on("error", () => {})
          socket.once("connect", () => {
            socket.end()
            resume(Effect.succeed(socket))
          })
        }),
        (socket) => Effect.sync(() => socket.destroy())
      )
      expect(silent.writableEnded).toBe(true)
      yield* eventually("the second FIN at the server", closeWaiting(tcp.address.port), (n) => n === 2)
      yield* nextTurn
      const empty = yield* NodeSsl.tcpAccept(tcp)
      expect(yield* empty.input.read().pipe(Effect.timeout("5 seconds"))).toEqual(Option.none())
    }).pipe(Effect.provide(TestLayer)))
})

describe("a peer that reads nothing", () => {
  it.scopedLive("cannot hold a connection's scope open: it ends within its grace period, without close_notify", () =>
    Effect.gen(function*() {
      const listener = yield* localListener
      const accepted = yield* Effect.fork(Ssl.accept(listener))
      const chunk = new Uint8Array(1024 * 1024).fill(0x33)
      let written = 0
      const clientScope = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const client = yield* connectTo(listener)
        while (true) {
          yield* client.output.write(chunk)
          written += chunk.length
        }
      })))
      const server = yield* Fiber.join(accepted)
      let last = -1
      let still = 0
      yield* eventually(
        "writer held back",
        Effect.gen(function*() {
          const status = yield* Fiber.status(clientScope)
          still = status._tag === "Suspended" && written === last ? still + 1 : 0
          last = written
          return { still, written }
        }),
        (s) => s.still >= 20,
        "20 seconds"
      )
      // The close_notify cannot get through a full window: the scope gives up after its grace.
      const interrupted = Date.now()
      yield* Fiber.interrupt(clientScope)
      const elapsed = Date.now() - interrupted
      expect(elapsed).toBeLessThan(3000)
      let received = 0
      let end = ""
      while (true) {
        const next = yield* Effect.either(server.input.read())
        if (next._tag === "Left") {
          end = `${next.left._tag}:${"reason" in next.left ? String(next.left.reason) : ""}`
          break
        }
        if (Option.isNone(next.right)) {
          end = "eof"
          break
        }
        received += next.right.value.length
      }
      // At most what was handed over: the completed writes and the one that was waiting.
      expect(received).toBeLessThanOrEqual(written + chunk.length)
      // (the server does not detect truncation: a bare FIN is an end of input to it)
      expect(["eof", "IoError:Reset"]).toContain(end)
    }).pipe(Effect.provide(TestLayer)))
})

describe("a peer that reads but never closes its side", () => {
  it.scopedLive("gets everything and the close_notify; the socket still goes within its grace period", () =>
    Effect.gen(function*() {
      // node:tls with allowHalfOpen: it reads to the end and never ends its own side. The scope's
      // end waits for the peer's close before it lets the socket go (a socket closed with unread
      // bytes is reset and the peer loses what it has not read), but not for ever.
      // (The sockets of the tests before this one go within their own grace periods.)
      yield* eventually("earlier sockets closed", resources, (r) => r.tcpSockets === 0, "5 seconds")
      const seen = { bytes: 0, ended: false, socket: undefined as Tls.TLSSocket | undefined }
      const server = yield* Effect.acquireRelease(
        Effect.async<Tls.Server>((resume) => {
          const s = Tls.createServer({
            key: Fs.readFileSync(fixture("server.key")),
            cert: Fs.readFileSync(fixture("server-chain.pem")),
            allowHalfOpen: true
          }, (socket) => {
            seen.socket = socket
            socket.on("error", () => {})
            socket.on("data", (data: Buffer) => {
              seen.bytes += data.length
            })
            socket.on("end", () => {
              seen.ended = true
            })
          })
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.sync(() => s.close())
      )
      const port = (server.address() as Net.AddressInfo).port
      const before = (yield* resources).tcpSockets
      const size = 256 * 1024
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Ssl.connect("localhost", port, yield* clientContext())
        yield* conn.output.write(new Uint8Array(size).fill(7))
      }))
      yield* eventually("the peer saw the end", Effect.sync(() => seen.ended), (ended) => ended)
      expect(seen.bytes).toBe(size)
      // Only the server's socket is left (it never closes), ours is gone.
      yield* eventually("our socket gone", resources, (r) => r.tcpSockets === before + 1, "5 seconds")
      seen.socket?.destroy()
      yield* eventually("the server's socket gone", resources, (r) => r.tcpSockets === before)
    }).pipe(Effect.provide(TestLayer)))
})

describe("leaks", () => {
  it.live("every socket and file descriptor of this file is released", () => leaks.released)
})

describe("a connection that arrives while an accept waits", () => {
  /**
   * Forks `effect` in a fiber whose steps are held, once it waits, until `release`: a program busy
   * elsewhere. (Its first steps run at once, up to the accept's wait for a connection.)
   */
  const heldFiber = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      let holding = false
      const held: Array<Scheduler.Task> = []
      const scheduler = Scheduler.make((task, priority) => {
        if (holding) held.push(task)
        else Scheduler.defaultScheduler.scheduleTask(task, priority)
      })
      const fiber = yield* Effect.fork(Effect.withScheduler(effect, scheduler))
      yield* suspended(fiber)
      holding = true
      return {
        fiber,
        release: Effect.sync(() => {
          holding = false
          for (const task of held.splice(0)) Scheduler.defaultScheduler.scheduleTask(task, 0)
        })
      }
    })

  /** A node:tls client's handshake against `port`: how it ended. */
  const nodeTlsClient = (port: number, send?: string) =>
    Effect.async<string>((resume) => {
      const socket = Tls.connect({
        host: "127.0.0.1",
        port,
        servername: "localhost",
        ca: Fs.readFileSync(fixture("root-ca.pem"))
      })
      socket.once("secureConnect", () => {
        if (send !== undefined) socket.end(send)
        resume(Effect.succeed(socket.authorized ? "secure" : `unauthorized: ${socket.authorizationError}`))
      })
      socket.once("error", (error) => resume(Effect.succeed(`error: ${(error as NodeJS.ErrnoException).code}`)))
      return Effect.sync(() => socket.destroy())
    }).pipe(
      // (without a bound, a handshake that waits for the accepting fiber would hang the test)
      Effect.timeoutFail({
        duration: "10 seconds",
        onTimeout: () => new Error("the client's handshake did not finish")
      })
    )

  it.scopedLive("its handshake is done before the accepting fiber runs again; the accept then has the connection, timed from its arrival", () =>
    Effect.gen(function*() {
      const label = "arrives-while-waiting"
      const listener = yield* localListener
      const { fiber, release } = yield* heldFiber(Effect.tagMetrics(
        Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => conn.input.readAll)),
        "test",
        label
      ))
      // The client completes its handshake, and sends, while the fiber that accepts does nothing.
      expect(yield* nodeTlsClient(listener.address.port, "sent before the accept ran")).toBe("secure")
      yield* Effect.sleep("200 millis")
      yield* release
      expect(new TextDecoder().decode(yield* Fiber.join(fiber))).toBe("sent before the accept ran")
      // The handshake's duration runs from the connection's arrival, before the client's handshake
      // was done, so it includes the 200 ms the fiber was held (less a millisecond of the timer's
      // granularity); counted from when the accept ran it would be a few.
      const durations = (yield* Metric.snapshot).filter((pair) =>
        pair.metricKey.name === "effect_ssl_handshake_duration_ms" &&
        pair.metricKey.tags.some((tag) => tag.key === "test" && tag.value === label)
      ).map((pair) => pair.metricState)
      expect(durations).toHaveLength(1)
      const duration = durations[0]!
      if (!MetricState.isHistogramState(duration)) return expect.fail("not a histogram")
      expect(duration.count).toBe(1)
      expect(duration.min).toBeGreaterThanOrEqual(199)
    }).pipe(Effect.provide(TestLayer)))

  /** Runs `f` right after the next 'connection' of any net.Server has been handled, in that turn. */
  const afterNextConnection = (f: () => void) => {
    const original = Net.Server.prototype.emit
    const emit = original as (this: Net.Server, event: string | symbol, ...args: Array<unknown>) => boolean
    Net.Server.prototype.emit = function(this: Net.Server, event: string | symbol, ...args: Array<unknown>) {
      const result = emit.call(this, event, ...args)
      if (event === "connection") {
        Net.Server.prototype.emit = original
        f()
      }
      return result
    } as typeof original
  }

  it.scopedLive("the accept it was begun for is interrupted before it runs: the connection keeps its place (backlog 1 resets the next), and the next accept has it", () =>
    Effect.gen(function*() {
      const before = yield* resources
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: yield* serverContext(), backlog: 1 })
        const accepting = yield* Effect.fork(Effect.scoped(Ssl.accept(listener)))
        yield* suspended(accepting)
        // Interrupted in the turn the connection arrives, before its wake-up.
        afterNextConnection(() => accepting.unsafeInterruptAsFork(FiberId.none))
        const { client, secured } = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const client = Tls.connect({
              host: "127.0.0.1",
              port: listener.address.port,
              servername: "localhost",
              ca: Fs.readFileSync(fixture("root-ca.pem"))
            })
            client.on("error", () => {})
            const secured = new Promise<void>((resolve) => client.once("secureConnect", () => resolve()))
            return { client, secured }
          }),
          ({ client }) => Effect.sync(() => client.destroy())
        )
        expect(yield* Effect.exit(Fiber.join(accepting))).toSatisfy(Exit.isInterrupted)
        // Nobody has accepted it, yet its handshake is done.
        yield* Effect.promise(() => secured)
        client.end("sent before any accept ran")
        // The listener holds it (backlog 1): the next client is reset at once.
        const next = yield* Effect.async<string>((resume) => {
          const socket = Net.connect({ host: "127.0.0.1", port: listener.address.port })
          socket.on("error", (error) => resume(Effect.succeed((error as NodeJS.ErrnoException).code ?? "error")))
          socket.once("close", () => resume(Effect.succeed("closed")))
          return Effect.sync(() => socket.destroy())
        })
        expect(next).toMatch(/^(ECONNRESET|closed)$/)
        // The next accept takes it, with what its client sent.
        const taken = yield* Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => drain(conn.input)))
        expect(taken).toEqual({ data: "sent before any accept ran", end: "eof" })
      }))
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))

  it.scopedLive("a client that fails its handshake before the accepting fiber runs again is that accept's error", () =>
    Effect.gen(function*() {
      const before = yield* resources
      yield* Effect.scoped(Effect.gen(function*() {
        const listener = yield* localListener
        const { fiber, release } = yield* heldFiber(Effect.scoped(Effect.flip(Ssl.accept(listener))))
        // Plain HTTP: the server refuses it and closes the connection, with nobody to tell yet.
        const client = yield* rawClient(listener.address.port)
        client.socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        yield* client.closed
        yield* release
        expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "HandshakeError", reason: "NotTls", side: "server" })
        // And the next client is served by the next accept.
        const accepted = yield* Effect.fork(
          Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => conn.input.readAll))
        )
        expect(yield* nodeTlsClient(listener.address.port, "next")).toBe("secure")
        expect(new TextDecoder().decode(yield* Fiber.join(accepted))).toBe("next")
      }))
      yield* backTo(before)
    }).pipe(Effect.provide(TestLayer)))
})
