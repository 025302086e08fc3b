import { Ssl } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"

const cert = (subject: string, subjectAltNames: ReadonlyArray<string>): Ssl.PeerCertificate => ({
  subject,
  issuer: "/CN=Test CA",
  validFrom: new Date(0),
  validTo: new Date(0),
  fingerprint256: "",
  subjectAltNames
})

describe("host names of a peer certificate", () => {
  it("lists the DNS subject alt names, ignoring the CN when there are any", () => {
    const c = cert("/O=x/CN=ignored.example", ["DNS:a.example", "IP Address:127.0.0.1", "DNS:b.example"])
    expect(Ssl.peerHostnames(c)).toEqual(["a.example", "b.example"])
  })

  it("falls back to the CN when there is no DNS alt name", () => {
    expect(Ssl.peerHostnames(cert("/C=US/O=x/CN=localhost", []))).toEqual(["localhost"])
    expect(Ssl.peerHostnames(cert("/C=US/O=x", []))).toEqual([])
  })

  it("matches names case-insensitively and ignores a trailing dot", () => {
    const c = cert("/CN=x", ["DNS:Example.COM"])
    expect(Ssl.checkHostname(c, "example.com")).toBe(true)
    expect(Ssl.checkHostname(c, "example.com.")).toBe(true)
    expect(Ssl.checkHostname(c, "www.example.com")).toBe(false)
  })

  it("lets a wildcard stand for exactly one left-most label", () => {
    const c = cert("/CN=*.example.test", ["DNS:*.example.test"])
    expect(Ssl.checkHostname(c, "a.example.test")).toBe(true)
    expect(Ssl.checkHostname(c, "example.test")).toBe(false)
    expect(Ssl.checkHostname(c, "a.b.example.test")).toBe(false)
    expect(Ssl.checkHostname(cert("/CN=*.test", ["DNS:*.test"]), "a.test")).toBe(false)
  })

  it("checks IP addresses against IP alt names only, IPv6 in any spelling", () => {
    const c = cert("/CN=127.0.0.1", ["DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"])
    expect(Ssl.checkHostname(c, "127.0.0.1")).toBe(true)
    expect(Ssl.checkHostname(c, "::1")).toBe(true)
    expect(Ssl.checkHostname(c, "[::1]")).toBe(true)
    expect(Ssl.checkHostname(c, "127.0.0.2")).toBe(false)
    expect(Ssl.checkHostname(cert("/CN=127.0.0.1", []), "127.0.0.1")).toBe(false)
  })
})
