import { Protocol, SslError } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

type Expected = Omit<Protocol.Resolved, "protocol">

const expected: Record<Exclude<Protocol.Protocol, "sslv2" | "sslv3">, Expected> = {
  "auto": { minVersion: "TLSv1.2", maxVersion: "TLSv1.3", legacy: false },
  "secure": { minVersion: "TLSv1.2", maxVersion: "TLSv1.3", legacy: false },
  "sslv2-or-v3": { minVersion: "TLSv1.2", maxVersion: "TLSv1.3", legacy: false },
  "tls": { minVersion: "TLSv1", maxVersion: "TLSv1", legacy: true },
  "tls1": { minVersion: "TLSv1", maxVersion: "TLSv1", legacy: true },
  "tls1.1": { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", legacy: true },
  "tls1.2": { minVersion: "TLSv1.2", maxVersion: "TLSv1.2", legacy: false },
  "tls1.3": { minVersion: "TLSv1.3", maxVersion: "TLSv1.3", legacy: false }
}

describe("Protocol.resolve", () => {
  for (const [name, range] of Object.entries(expected)) {
    it.effect(`resolves "${name}" to ${range.minVersion}..${range.maxVersion}`, () =>
      Effect.gen(function*() {
        const resolved = yield* Protocol.resolve(name)
        expect(resolved).toEqual({ protocol: name, ...range })
      }))
  }

  it.effect("accepts Racket's later spellings tls11, tls12 and tls13", () =>
    Effect.gen(function*() {
      expect(yield* Protocol.resolve("tls11")).toEqual({ protocol: "tls1.1", ...expected["tls1.1"] })
      expect(yield* Protocol.resolve("tls12")).toEqual({ protocol: "tls1.2", ...expected["tls1.2"] })
      expect(yield* Protocol.resolve("tls13")).toEqual({ protocol: "tls1.3", ...expected["tls1.3"] })
    }))

  it.effect("marks exactly TLS 1.0 and 1.1 as legacy (they need OpenSSL security level 0)", () =>
    Effect.gen(function*() {
      const legacy: Array<string> = []
      for (const name of Object.keys(expected)) {
        if ((yield* Protocol.resolve(name)).legacy) legacy.push(name)
      }
      expect(legacy.sort()).toEqual(["tls", "tls1", "tls1.1"])
    }))

  it.effect("\"auto\" and \"secure\" never allow anything below TLS 1.2", () =>
    Effect.gen(function*() {
      for (const name of ["auto", "secure", "sslv2-or-v3"]) {
        const { minVersion } = yield* Protocol.resolve(name)
        expect(minVersion).toBe("TLSv1.2")
      }
    }))

  for (const [name, words] of [["sslv2", ["SSL 2", "insecure"]], ["sslv3", ["SSL 3", "insecure"]]] as const) {
    it.effect(`fails for "${name}" with UnsupportedProtocolError saying what and why`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Protocol.resolve(name))
        expect(error).toBeInstanceOf(SslError.UnsupportedProtocolError)
        expect(error._tag).toBe("UnsupportedProtocolError")
        const unsupported = error as SslError.UnsupportedProtocolError
        expect(unsupported.protocol).toBe(name)
        expect(unsupported.message).toContain(`"${name}"`)
        for (const word of words) expect(unsupported.message).toContain(word)
        expect(unsupported.message).toContain("OpenSSL")
        // and says what to use instead
        expect(unsupported.message).toContain("auto")
      }))
  }

  it.effect("fails for unknown names with InvalidArgumentError on the argument \"protocol\"", () =>
    Effect.gen(function*() {
      const unknown = ["tls1.4", "TLS1.2", "ssl", "", " tls1.2", "dtls1.2", "toString", "__proto__", "constructor"]
      for (const name of unknown) {
        const error = yield* Effect.flip(Protocol.resolve(name))
        expect(error, name).toBeInstanceOf(SslError.InvalidArgumentError)
        const invalid = error as SslError.InvalidArgumentError
        expect(invalid.argument).toBe("protocol")
        expect(invalid.value).toBe(name)
        expect(invalid.message).toContain("protocol")
        expect(invalid.message).toContain(JSON.stringify(name))
        // lists what would have worked
        expect(invalid.message).toContain("\"tls1.3\"")
      }
    }))
})

describe("Protocol lists and guards", () => {
  it("supported protocols include TLS 1.3 and none of the SSL versions", () => {
    for (const list of [Protocol.supportedClientProtocols, Protocol.supportedServerProtocols]) {
      expect(list).toContain("tls1.3")
      expect(list).toContain("tls1.2")
      expect(list).toContain("auto")
      expect(list).not.toContain("sslv3")
      expect(list).not.toContain("sslv2")
    }
  })

  it.effect("every supported protocol resolves", () =>
    Effect.gen(function*() {
      for (const name of [...Protocol.supportedClientProtocols, ...Protocol.supportedServerProtocols]) {
        const resolved = yield* Protocol.resolve(name)
        expect(resolved.protocol).toBe(name)
      }
    }))

  it("the best protocol to pin is TLS 1.3 on both sides", () => {
    expect(Protocol.maxClientProtocol).toBe("tls1.3")
    expect(Protocol.maxServerProtocol).toBe("tls1.3")
  })

  it("isProtocol accepts every protocol name (the unsupported seed ones too) and nothing else", () => {
    const names: ReadonlyArray<Protocol.Protocol> = [
      ...Object.keys(expected) as Array<Protocol.Protocol>,
      "sslv2",
      "sslv3"
    ]
    for (const name of names) expect(Protocol.isProtocol(name), name).toBe(true)
    for (
      const other of [
        "tls1.4",
        "TLS1.2",
        "",
        "tls12",
        "toString",
        "__proto__",
        "constructor",
        12,
        null,
        undefined,
        {},
        ["auto"]
      ]
    ) {
      expect(Protocol.isProtocol(other), String(other)).toBe(false)
    }
  })
})
