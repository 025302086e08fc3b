import { Pki, Ssl } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { readFixture } from "./helpers/Fixtures.js"

/** The fixture's certificate as the platform describes it (what a handshake reports). */
const peer = (name: string) =>
  Effect.flatMap(Effect.orDie(Pki.parseCertificates(readFixture(name))), (certs) => Pki.describe(certs[0]!))

layer(NodeSsl.layer)("host names of a certificate, as OpenSSL reads them", (it) => {
  it.effect("lists the DNS subject alt names, ignoring the CN when there are any", () =>
    Effect.gen(function*() {
      expect(Ssl.peerHostnames(yield* peer("server.pem"))).toEqual(["localhost"])
      expect(Ssl.peerHostnames(yield* peer("wrong-host.pem"))).toEqual(["example.com"])
    }))

  it.effect("falls back to every common name when there is no DNS alt name", () =>
    Effect.gen(function*() {
      expect(Ssl.peerHostnames(yield* peer("cn-only.pem"))).toEqual(["localhost"])
      expect(Ssl.peerHostnames(yield* peer("two-cn.pem"))).toEqual(["first.example", "second.example"])
      expect(Ssl.peerHostnames(yield* peer("cn-slash.pem"))).toEqual(["victim.example/admin"])
    }))

  it.effect("matches names case-insensitively and ignores a trailing dot", () =>
    Effect.gen(function*() {
      const c = yield* peer("wrong-host.pem")
      expect(Ssl.checkHostname(c, "example.com")).toBe(true)
      expect(Ssl.checkHostname(c, "EXAMPLE.com")).toBe(true)
      expect(Ssl.checkHostname(c, "example.com.")).toBe(true)
      expect(Ssl.checkHostname(c, "www.example.com")).toBe(false)
      expect(Ssl.checkHostname(c, "")).toBe(false)
      expect(Ssl.checkHostname(c, "example.com\0.evil")).toBe(false)
    }))

  it.effect("lets a wildcard stand for exactly one left-most label", () =>
    Effect.gen(function*() {
      const c = yield* peer("wildcard.pem")
      expect(Ssl.checkHostname(c, "a.example.test")).toBe(true)
      expect(Ssl.checkHostname(c, "example.test")).toBe(false)
      expect(Ssl.checkHostname(c, "a.b.example.test")).toBe(false)
    }))

  it.effect("checks IP addresses against IP alt names only, IPv6 in any spelling", () =>
    Effect.gen(function*() {
      const c = yield* peer("server.pem")
      expect(Ssl.checkHostname(c, "127.0.0.1")).toBe(true)
      expect(Ssl.checkHostname(c, "::1")).toBe(true)
      expect(Ssl.checkHostname(c, "[::1]")).toBe(true)
      expect(Ssl.checkHostname(c, "0:0:0:0:0:0:0:1")).toBe(true)
      expect(Ssl.checkHostname(c, "127.0.0.2")).toBe(false)
      // the CN is a name, never an address
      expect(Ssl.checkHostname(yield* peer("cn-only.pem"), "127.0.0.1")).toBe(false)
    }))

  it.effect("a CN is one name: a slash in it does not end it, and every CN counts", () =>
    Effect.gen(function*() {
      const slash = yield* peer("cn-slash.pem")
      expect(Ssl.checkHostname(slash, "victim.example")).toBe(false)
      expect(Ssl.checkHostname(slash, "admin")).toBe(false)
      const two = yield* peer("two-cn.pem")
      expect(Ssl.checkHostname(two, "first.example")).toBe(true)
      expect(Ssl.checkHostname(two, "second.example")).toBe(true)
    }))

  it.effect("a certificate built by hand, not by the platform, is valid for no name", () =>
    Effect.gen(function*() {
      const described = yield* peer("server.pem")
      const copy: Ssl.PeerCertificate = { ...described }
      expect(Ssl.checkHostname(copy, "localhost")).toBe(false)
      expect(Ssl.peerHostnames(copy)).toEqual([])
      // what the platform adds does not show among the fields
      expect(copy).toEqual(described)
    }))
})
