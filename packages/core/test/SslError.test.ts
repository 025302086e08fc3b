import { SslError } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const cause = new Error("ECONNREFUSED 127.0.0.1:4433")

/** One of each, with the fields a caller would have to act on. */
const samples = {
  SslUnavailableError: new SslError.SslUnavailableError({ reason: "node:tls failed to load" }),
  UnsupportedProtocolError: new SslError.UnsupportedProtocolError({
    protocol: "sslv3",
    reason: "gone from OpenSSL 3"
  }),
  InvalidArgumentError: new SslError.InvalidArgumentError({
    argument: "capacity",
    value: -5,
    reason: "must be positive"
  }),
  CertificateLoadError: new SslError.CertificateLoadError({ path: "/etc/ssl/missing.pem", reason: "NotFound" }),
  PrivateKeyLoadError: new SslError.PrivateKeyLoadError({ path: "/keys/server.key", reason: "Encrypted" }),
  ConnectError: new SslError.ConnectError({ hostname: "db.example", port: 4433, reason: "Refused", cause }),
  ListenError: new SslError.ListenError({ hostname: "127.0.0.1", port: 8443, reason: "AddressInUse" }),
  HandshakeError: new SslError.HandshakeError({ reason: "Timeout", side: "client", peer: "mail.example:465" }),
  VerifyError: new SslError.VerifyError({ reason: "Expired", side: "client", peer: "expired.example" }),
  IoError: new SslError.IoError({ operation: "write", reason: "BrokenPipe" })
} satisfies { [K in SslError.SslError["_tag"]]: Extract<SslError.SslError, { _tag: K }> }

const all: ReadonlyArray<SslError.SslError> = Object.values(samples)

describe("SslError", () => {
  it("every class has its own _tag, named after the class", () => {
    for (const [name, error] of Object.entries(samples)) {
      expect(error._tag).toBe(name)
      expect(error.constructor.name).toBe(name)
    }
    expect(new Set(all.map((e) => e._tag)).size).toBe(10)
  })

  it("isSslError is true for every class and false for anything else", () => {
    for (const error of all) expect(SslError.isSslError(error), error._tag).toBe(true)
    const impostors: ReadonlyArray<unknown> = [
      new Error("plain"),
      new TypeError("type"),
      { _tag: "IoError", operation: "read", reason: "Closed" },
      {},
      "IoError",
      null,
      undefined,
      42
    ]
    for (const other of impostors) expect(SslError.isSslError(other)).toBe(false)
  })

  it("every error is an Error with a stack, so logs and defects show where it came from", () => {
    for (const error of all) {
      expect(error).toBeInstanceOf(Error)
      expect(typeof error.stack).toBe("string")
    }
  })

  it("messages name what the caller gave: reason, protocol, argument, path, host and port", () => {
    expect(samples.SslUnavailableError.message).toContain("node:tls failed to load")
    expect(samples.UnsupportedProtocolError.message).toContain("sslv3")
    expect(samples.UnsupportedProtocolError.message).toContain("gone from OpenSSL 3")
    expect(samples.InvalidArgumentError.message).toContain("capacity")
    expect(samples.InvalidArgumentError.message).toContain("-5")
    expect(samples.InvalidArgumentError.message).toContain("must be positive")
    expect(samples.CertificateLoadError.message).toContain("/etc/ssl/missing.pem")
    expect(samples.CertificateLoadError.message).toContain("does not exist")
    expect(samples.PrivateKeyLoadError.message).toContain("/keys/server.key")
    expect(samples.PrivateKeyLoadError.message).toContain("passphrase")
    expect(samples.ConnectError.message).toContain("db.example:4433")
    expect(samples.ConnectError.message).toContain("refused")
    expect(samples.ListenError.message).toContain("127.0.0.1:8443")
    expect(samples.ListenError.message).toContain("in use")
    expect(samples.HandshakeError.message).toContain("mail.example:465")
    expect(samples.HandshakeError.message).toContain("in time")
    expect(samples.VerifyError.message).toContain("expired.example")
    expect(samples.VerifyError.message).toContain("expired")
    expect(samples.IoError.message).toContain("write")
    expect(samples.IoError.message).toContain("no longer reading")
  })

  it("a listener on all interfaces is shown as *", () => {
    const error = new SslError.ListenError({ hostname: undefined, port: 443, reason: "PermissionDenied" })
    expect(error.message).toContain("*:443")
    expect(error.message).toContain("privileges")
  })

  it("the underlying cause's message is kept in the message and the cause in the field", () => {
    expect(samples.ConnectError.message).toContain("ECONNREFUSED 127.0.0.1:4433")
    expect(samples.ConnectError.cause).toBe(cause)
    const withText = new SslError.IoError({ operation: "read", reason: "Other", cause: "socket hang up" })
    expect(withText.message).toContain("socket hang up")
    const noCause = new SslError.IoError({ operation: "read", reason: "Closed" })
    expect(noCause.message).not.toContain("()")
    expect(noCause.message).not.toContain("undefined")
  })

  it("an InvalidArgumentError shows strings quoted and survives values that cannot be printed", () => {
    expect(new SslError.InvalidArgumentError({ argument: "protocol", value: "tls9", reason: "unknown" }).message)
      .toContain("\"tls9\"")
    const unprintable = {
      toString: () => {
        throw new Error("no")
      }
    }
    const message =
      new SslError.InvalidArgumentError({ argument: "options", value: unprintable, reason: "bad" }).message
    expect(message).toContain("options")
    expect(message).toContain("bad")
  })

  it("every reason of every class has its own readable text", () => {
    const reasons = <E extends { readonly message: string }>(
      make: (reason: never) => E,
      list: ReadonlyArray<string>
    ) => {
      const messages = list.map((reason) => make(reason as never).message)
      for (const message of messages) {
        expect(message).not.toContain("undefined")
        expect(message.length).toBeGreaterThan(20)
      }
      expect(new Set(messages).size).toBe(list.length)
    }
    const fileReasons: ReadonlyArray<SslError.FileReason> = [
      "NotFound",
      "PermissionDenied",
      "IsDirectory",
      "NotRegularFile",
      "TooLarge",
      "ReadFailed",
      "Empty"
    ]
    const certificateReasons: ReadonlyArray<SslError.CertificateLoadReason> = [
      ...fileReasons,
      "NoCertificate",
      "Malformed",
      "KeyMismatch",
      "Unavailable",
      "Sealed"
    ]
    reasons(
      (reason: SslError.CertificateLoadReason) => new SslError.CertificateLoadError({ path: "p", reason }),
      certificateReasons
    )
    const keyReasons: ReadonlyArray<SslError.PrivateKeyLoadReason> = [
      ...fileReasons,
      "NoKey",
      "NoRsaKey",
      "Malformed",
      "Encrypted",
      "BadPassphrase",
      "Unsupported",
      "KeyMismatch",
      "Unavailable",
      "Sealed"
    ]
    reasons(
      (reason: SslError.PrivateKeyLoadReason) => new SslError.PrivateKeyLoadError({ path: "p", reason }),
      keyReasons
    )
    const connectReasons: ReadonlyArray<SslError.ConnectReason> = [
      "Refused",
      "UnknownHost",
      "Unreachable",
      "TimedOut",
      "Reset",
      "Other"
    ]
    reasons(
      (reason: SslError.ConnectReason) => new SslError.ConnectError({ hostname: "h", port: 1, reason }),
      connectReasons
    )
    const listenReasons: ReadonlyArray<SslError.ListenReason> = [
      "AddressInUse",
      "PermissionDenied",
      "AddressNotAvailable",
      "Closed",
      "Other"
    ]
    reasons(
      (reason: SslError.ListenReason) => new SslError.ListenError({ hostname: "h", port: 1, reason }),
      listenReasons
    )
    const handshakeReasons: ReadonlyArray<SslError.HandshakeReason> = [
      "Timeout",
      "NotTls",
      "ProtocolVersion",
      "NoSharedCipher",
      "CertificateRequired",
      "AlertReceived",
      "PeerClosed",
      "Reset",
      "NoApplicationProtocol",
      "Other"
    ]
    reasons(
      (reason: SslError.HandshakeReason) => new SslError.HandshakeError({ reason, side: "client" }),
      handshakeReasons
    )
    const verifyReasons: ReadonlyArray<SslError.VerifyReason> = [
      "Expired",
      "NotYetValid",
      "HostnameMismatch",
      "SelfSigned",
      "UnknownIssuer",
      "InvalidCa",
      "WeakKey",
      "NoPeerCertificate",
      "Other"
    ]
    reasons((reason: SslError.VerifyReason) => new SslError.VerifyError({ reason, side: "server" }), verifyReasons)
    const ioReasons: ReadonlyArray<SslError.IoReason> = [
      "UnexpectedEof",
      "TruncatedEof",
      "Reset",
      "Closed",
      "BrokenPipe",
      "Protocol",
      "Other"
    ]
    reasons((reason: SslError.IoReason) => new SslError.IoError({ operation: "read", reason }), ioReasons)
  })

  it.effect("Effect.catchTag picks out each class from the union", () =>
    Effect.gen(function*() {
      for (const error of all) {
        const failing: Effect.Effect<never, SslError.SslError> = Effect.fail(error)
        const caught = yield* failing.pipe(
          Effect.catchTags({
            SslUnavailableError: (e) => Effect.succeed(`unavailable:${e.reason}`),
            UnsupportedProtocolError: (e) => Effect.succeed(`unsupported:${e.protocol}`),
            InvalidArgumentError: (e) => Effect.succeed(`invalid:${e.argument}`),
            CertificateLoadError: (e) => Effect.succeed(`certificate:${e.path}`),
            PrivateKeyLoadError: (e) => Effect.succeed(`key:${e.path}`),
            ConnectError: (e) => Effect.succeed(`connect:${e.hostname}:${e.port}`),
            ListenError: (e) => Effect.succeed(`listen:${e.port}`),
            HandshakeError: (e) => Effect.succeed(`handshake:${e.reason}`),
            VerifyError: (e) => Effect.succeed(`verify:${e.reason}`),
            IoError: (e) => Effect.succeed(`io:${e.reason}`)
          })
        )
        expect(caught.split(":")[0]).toBe(
          {
            SslUnavailableError: "unavailable",
            UnsupportedProtocolError: "unsupported",
            InvalidArgumentError: "invalid",
            CertificateLoadError: "certificate",
            PrivateKeyLoadError: "key",
            ConnectError: "connect",
            ListenError: "listen",
            HandshakeError: "handshake",
            VerifyError: "verify",
            IoError: "io"
          }[error._tag]
        )
      }
      // one tag caught, the others pass through untouched
      const io: Effect.Effect<string, SslError.SslError> = Effect.fail(samples.IoError)
      expect(yield* Effect.catchTag(io, "IoError", (e) => Effect.succeed(e.operation))).toBe("write")
      const connect: Effect.Effect<string, SslError.SslError> = Effect.fail(samples.ConnectError)
      const passed = yield* Effect.flip(Effect.catchTag(connect, "IoError", () => Effect.succeed("wrong")))
      expect(passed).toBe(samples.ConnectError)
    }))

  it.effect("errors can be yielded directly in Effect.gen", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.gen(function*() {
        return yield* new SslError.IoError({ operation: "read", reason: "UnexpectedEof" })
      }))
      expect(error._tag).toBe("IoError")
      expect(error.reason).toBe("UnexpectedEof")
    }))
})

describe("messages built from OpenSSL errors", () => {
  it("keep OpenSSL's reason and drop its source file and line", () => {
    const cause = new Error(
      "800C022AF37F0000:error:0A0000C7:SSL routines:tls_process_client_certificate:peer did not return a certificate:../deps/openssl/openssl/ssl/statem/statem_srvr.c:3517:\n"
    )
    const error = new SslError.HandshakeError({ reason: "CertificateRequired", side: "server", cause })
    expect(error.message).toContain("(peer did not return a certificate)")
    expect(error.message).not.toContain("statem_srvr.c")
    expect(error.message).not.toContain("\n")
  })
})

describe("errors across a process boundary", () => {
  // What an RPC transport does with them: encode with the schema, JSON on the wire, decode.
  const roundTrip = (error: SslError.SslError): SslError.SslError =>
    Schema.decodeUnknownSync(SslError.SslError)(
      JSON.parse(JSON.stringify(Schema.encodeSync(SslError.SslError)(error)))
    )

  it("every class comes back as the same class, with the same tag, fields and message", () => {
    for (const error of all) {
      const back = roundTrip(error)
      expect(back.constructor, error._tag).toBe(error.constructor)
      expect(back._tag).toBe(error._tag)
      expect(back.message).toBe(error.message)
      expect(SslError.isSslError(back)).toBe(true)
      for (const [key, value] of Object.entries(error)) {
        if (key !== "cause") {
          expect((back as unknown as Record<string, unknown>)[key], `${error._tag}.${key}`).toEqual(value)
        }
      }
    }
  })

  it("a cause travels as its message, so the message the receiver reads is the sender's", () => {
    const openssl = new SslError.HandshakeError({
      reason: "CertificateRequired",
      side: "server",
      cause: new Error(
        "80:error:0A0000C7:SSL routines:tls_process_client_certificate:peer did not return a certificate:x.c:1:"
      )
    })
    const back = roundTrip(openssl)
    expect(back.message).toBe(openssl.message)
    expect(back.message).toContain("peer did not return a certificate")
    expect((back as SslError.HandshakeError).cause).toBeInstanceOf(Error)
    const text = roundTrip(new SslError.IoError({ operation: "read", reason: "Other", cause: "socket hang up" }))
    expect(text.message).toContain("(socket hang up)")
  })

  it("a listener on all interfaces stays one (hostname undefined, dropped by JSON)", () => {
    const back = roundTrip(new SslError.ListenError({ hostname: undefined, port: 443, reason: "PermissionDenied" }))
    expect(back._tag).toBe("ListenError")
    expect((back as SslError.ListenError).hostname).toBeUndefined()
    expect(back.message).toContain("*:443")
  })

  it("decoding checks what arrives: an unknown reason or tag is refused", () => {
    expect(() => Schema.decodeUnknownSync(SslError.SslError)({ _tag: "IoError", operation: "read", reason: "Gone" }))
      .toThrow(/reason/)
    expect(() => Schema.decodeUnknownSync(SslError.SslError)({ _tag: "NotAnSslError", reason: "Other" })).toThrow()
    expect(() =>
      Schema.decodeUnknownSync(SslError.VerifyError)({ _tag: "VerifyError", reason: "Expired", side: "both" })
    )
      .toThrow(/side/)
  })

  it("a class is its own schema, so one can be declared alone", () => {
    const verify = new SslError.VerifyError({
      reason: "UnknownIssuer",
      side: "client",
      peer: "localhost:443",
      code: "X"
    })
    const back = Schema.decodeUnknownSync(SslError.VerifyError)(Schema.encodeSync(SslError.VerifyError)(verify))
    expect(back).toBeInstanceOf(SslError.VerifyError)
    expect(back.reason).toBe("UnknownIssuer")
    expect(back.code).toBe("X")
  })

  it("the constructor checks its fields against the schema when asked", () => {
    expect(new SslError.IoError({ operation: "read", reason: "Closed" }, false).reason).toBe("Closed")
    expect(() => new SslError.IoError({ operation: "read", reason: "Gone" as never }, false)).toThrow(/reason/)
  })
})
