/**
 * The certificate matrix: for every kind of bad (and good) certificate, effect-ssl gives the verdict
 * the `openssl` command line gives, both ways round.
 *
 * - A client verifying a server: `openssl s_client -verify_return_error -verify_hostname NAME`
 *   (`-verify_ip` for an address) and effect-ssl's client, against the same effect-ssl server.
 * - A server verifying clients: `openssl s_server -Verify 1 -verify_return_error` and an effect-ssl
 *   server with `setVerify(ctx, true)`, each shown the same client certificate by an effect-ssl
 *   client. The committed fixtures have two client certificates only; the other client leaves
 *   (expired, self-signed, weak keys …) are issued at the start of this file by the fixture CAs,
 *   with the `openssl ca` steps of fixtures/generate.sh, into a temporary folder.
 *
 * A rejection is a VerifyError whose `reason` names the cause; `openssl` says "accept" or gives
 * its verify error number. Both are pinned in the tables below (OpenSSL 3.0 at security level
 * 2, as Debian and Ubuntu build it), so a change on either side fails here.
 */
import { Ssl, SslContext, SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { serveOn } from "../../core/test/helpers/Connections.js"
import { clientContext, TestLayer } from "../../core/test/helpers/Contexts.js"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { spawnOpenssl, sServer } from "../../core/test/helpers/Openssl.js"
import { watchProcess } from "../../core/test/helpers/Resources.js"

const watcher = watchProcess()

/** What `openssl` said: 0 for "accepted", else its verify error number and text. */
interface OpensslVerdict {
  readonly code: number
  readonly text: string
}

/** A row of the table printed for the README when EFFECT_SSL_PRINT_MATRIX is set. */
const table: Array<
  { readonly direction: string; readonly name: string; readonly openssl: string; readonly ours: string }
> = []

afterAll(() => {
  watcher.stop()
  expect(watcher.seen).toEqual([])
  if (process.env["EFFECT_SSL_PRINT_MATRIX"] !== undefined) {
    const lines = ["| Direction | Certificate | openssl verdict | effect-ssl |", "| --- | --- | --- | --- |"]
    for (const row of table) lines.push(`| ${row.direction} | ${row.name} | ${row.openssl} | ${row.ours} |`)
    process.stdout.write(`${lines.join("\n")}\n`)
  }
})

const show = (verdict: OpensslVerdict) => (verdict.code === 0 ? "accept" : `reject ${verdict.code} "${verdict.text}"`)

/** Parses an `openssl s_client`/`s_server` transcript run with `-verify_return_error`. */
const verdictOf = (output: string, accepted: RegExp): OpensslVerdict => {
  const failed = /verify error:num=(\d+):([^\n]*)/.exec(output)
  if (failed !== null) return { code: Number(failed[1]), text: failed[2]!.trim() }
  if (accepted.test(output)) return { code: 0, text: "ok" }
  throw new Error(`no verdict in the openssl transcript:\n${output}`)
}

const readFixture = (name: string) => Fs.readFileSync(Path.isAbsolute(name) ? name : fixture(name), "utf8")

// ---------------------------------------------------------------------------------------------
// Leaves issued for this run (the fixture CAs sign them as generate.sh does; so does a fixture
// leaf, for the chains that use a leaf as a CA)

// Made when the file loads, so that the tables below can name the files issued into it.
const issued = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-ssl-matrix-"))
const issuedFile = (name: string) => Path.join(issued, name)

const VALID = ["20250101000000Z", "21241231235959Z"] as const
const EXPIRED = ["20200101000000Z", "20210101000000Z"] as const
const FUTURE = ["20900101000000Z", "21900101000000Z"] as const

beforeAll(() => {
  const run = (args: ReadonlyArray<string>) =>
    ChildProcess.execFileSync("openssl", args, {
      cwd: issued,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, OPENSSL_CONF: issuedFile("req.cnf") }
    })
  Fs.writeFileSync(issuedFile("req.cnf"), "[ req ]\ndistinguished_name = dn\n[ dn ]\n")
  Fs.mkdirSync(issuedFile("newcerts"))
  Fs.writeFileSync(issuedFile("index.txt"), "")
  Fs.writeFileSync(issuedFile("serial"), "1000\n") // unused: -rand_serial
  Fs.writeFileSync(
    issuedFile("ca.cnf"),
    [
      "[ ca ]",
      "default_ca = CA_default",
      "[ CA_default ]",
      `dir = ${issued}`,
      "database = $dir/index.txt",
      "new_certs_dir = $dir/newcerts",
      "serial = $dir/serial",
      "default_md = sha256",
      "policy = policy_any",
      "unique_subject = no",
      "copy_extensions = none",
      "[ policy_any ]",
      "organizationName = optional",
      "commonName = supplied",
      ""
    ].join("\n")
  )
  Fs.writeFileSync(
    issuedFile("client.ext"),
    [
      "[ ext ]",
      "basicConstraints = critical, CA:FALSE",
      "keyUsage = critical, digitalSignature, keyEncipherment",
      "extendedKeyUsage = clientAuth",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid:always",
      ""
    ].join("\n")
  )
  Fs.writeFileSync(
    issuedFile("server.ext"),
    [
      "[ ext ]",
      "basicConstraints = critical, CA:FALSE",
      "keyUsage = critical, digitalSignature, keyEncipherment",
      "extendedKeyUsage = serverAuth",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid:always",
      "subjectAltName = DNS:localhost, IP:127.0.0.1",
      ""
    ].join("\n")
  )
  const leaf = (
    name: string,
    key: "ec" | 512 | 1024,
    issuer: string | "self",
    [start, end]: readonly [string, string],
    ext: "client" | "server" = "client"
  ) => {
    const keyFile = issuedFile(`${name}.key`)
    run(
      key === "ec"
        ? ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyFile]
        : ["genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${key}`, "-out", keyFile]
    )
    run(["req", "-new", "-key", keyFile, "-subj", `/O=effect-ssl/CN=effect-ssl ${name}`, "-out", issuedFile("csr.pem")])
    const signer = issuer === "self"
      ? ["-selfsign", "-keyfile", keyFile]
      : ["-cert", fixture(`${issuer}.pem`), "-keyfile", fixture(`${issuer}.key`)]
    run([
      "ca",
      "-batch",
      "-config",
      issuedFile("ca.cnf"),
      "-notext",
      "-preserveDN",
      "-rand_serial",
      "-md",
      "sha256",
      ...signer,
      "-startdate",
      start,
      "-enddate",
      end,
      "-extfile",
      issuedFile(`${ext}.ext`),
      "-extensions",
      "ext",
      "-in",
      issuedFile("csr.pem"),
      "-out",
      issuedFile(`${name}.pem`)
    ])
  }
  leaf("expired-client", "ec", "intermediate-ca", EXPIRED)
  leaf("not-yet-valid-client", "ec", "intermediate-ca", FUTURE)
  leaf("self-signed-client", "ec", "self", VALID)
  leaf("client-under-not-ca", "ec", "not-ca-intermediate", VALID)
  leaf("rsa1024-client", 1024, "intermediate-ca", VALID)
  leaf("rsa512-client", 512, "intermediate-ca", VALID)
  // A fixture leaf (CA:FALSE, no keyCertSign) signing another leaf.
  leaf("server-under-leaf", "ec", "server", VALID, "server")
  leaf("client-under-leaf", "ec", "client", VALID)
})

afterAll(() => {
  Fs.rmSync(issued, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------
// Client verifying a server

interface ServerCase {
  readonly name: string
  /** files concatenated into the chain the server sends (leaf first) */
  readonly chain: ReadonlyArray<string>
  readonly key: string
  /** the name (or address) the client connects to and verifies */
  readonly host: string
  /** a key below security level 2: the server runs at level 0 to be able to serve it at all */
  readonly weak?: "tls1.2" | "auto"
  readonly openssl: OpensslVerdict
  readonly ours: SslError.VerifyReason | "accept"
}

const ok: OpensslVerdict = { code: 0, text: "ok" }

const serverCases: ReadonlyArray<ServerCase> = [
  {
    name: "valid chain, DNS name",
    chain: ["server-chain.pem"],
    key: "server.key",
    host: "localhost",
    openssl: ok,
    ours: "accept"
  },
  {
    name: "valid chain, IP address",
    chain: ["server-chain.pem"],
    key: "server.key",
    host: "127.0.0.1",
    openssl: ok,
    ours: "accept"
  },
  {
    name: "expired",
    chain: ["expired-chain.pem"],
    key: "expired.key",
    host: "localhost",
    openssl: { code: 10, text: "certificate has expired" },
    ours: "Expired"
  },
  {
    name: "not yet valid",
    chain: ["not-yet-valid-chain.pem"],
    key: "not-yet-valid.key",
    host: "localhost",
    openssl: { code: 9, text: "certificate is not yet valid" },
    ours: "NotYetValid"
  },
  {
    name: "wrong host name (DNS: example.com for localhost)",
    chain: ["wrong-host-chain.pem"],
    key: "wrong-host.key",
    host: "localhost",
    openssl: { code: 62, text: "hostname mismatch" },
    ours: "HostnameMismatch"
  },
  {
    name: "wrong host (IP: 127.0.0.1, no IP SAN)",
    chain: ["wrong-host-chain.pem"],
    key: "wrong-host.key",
    host: "127.0.0.1",
    openssl: { code: 64, text: "IP address mismatch" },
    ours: "HostnameMismatch"
  },
  {
    name: "self-signed",
    chain: ["self-signed.pem"],
    key: "self-signed.key",
    host: "localhost",
    openssl: { code: 18, text: "self-signed certificate" },
    ours: "SelfSigned"
  },
  {
    name: "unknown issuer (leaf only)",
    chain: ["unknown-issuer.pem"],
    key: "unknown-issuer.key",
    host: "localhost",
    openssl: { code: 20, text: "unable to get local issuer certificate" },
    ours: "UnknownIssuer"
  },
  {
    name: "unknown issuer (with its untrusted root)",
    chain: ["unknown-issuer-chain.pem"],
    key: "unknown-issuer.key",
    host: "localhost",
    openssl: { code: 19, text: "self-signed certificate in certificate chain" },
    ours: "UnknownIssuer"
  },
  {
    name: "missing intermediate (leaf only)",
    chain: ["missing-intermediate.pem"],
    key: "server.key",
    host: "localhost",
    openssl: { code: 20, text: "unable to get local issuer certificate" },
    ours: "UnknownIssuer"
  },
  {
    name: "intermediate not marked CA",
    chain: ["leaf-under-not-ca-chain.pem"],
    key: "leaf-under-not-ca.key",
    host: "localhost",
    openssl: { code: 79, text: "invalid CA certificate" },
    ours: "InvalidCa"
  },
  {
    name: "a leaf used as a CA (the server leaf signed another)",
    chain: [issuedFile("server-under-leaf.pem"), "server.pem", "intermediate-ca.pem"],
    key: issuedFile("server-under-leaf.key"),
    host: "localhost",
    openssl: { code: 79, text: "invalid CA certificate" },
    ours: "InvalidCa"
  },
  {
    name: "RSA-1024 server key",
    chain: ["rsa1024.pem", "intermediate-ca.pem"],
    key: "rsa1024.key",
    host: "localhost",
    weak: "auto",
    openssl: { code: 66, text: "EE certificate key too weak" },
    ours: "WeakKey"
  },
  {
    name: "RSA-512 server key",
    chain: ["rsa512.pem", "intermediate-ca.pem"],
    key: "rsa512.key",
    host: "localhost",
    weak: "tls1.2",
    openssl: { code: 66, text: "EE certificate key too weak" },
    ours: "WeakKey"
  },
  {
    name: "1,000 SANs (localhost, the first)",
    chain: ["many-sans-chain.pem"],
    key: "many-sans.key",
    host: "localhost",
    openssl: ok,
    ours: "accept"
  },
  {
    name: "1,000 SANs (host999.example.test, the last)",
    chain: ["many-sans-chain.pem"],
    key: "many-sans.key",
    host: "host999.example.test",
    openssl: ok,
    ours: "accept"
  },
  {
    name: "1,000 SANs (host1000.example.test, not in it)",
    chain: ["many-sans-chain.pem"],
    key: "many-sans.key",
    host: "host1000.example.test",
    openssl: { code: 62, text: "hostname mismatch" },
    ours: "HostnameMismatch"
  },
  {
    name: "wildcard *.example.test for a.example.test",
    chain: ["wildcard-chain.pem"],
    key: "wildcard.key",
    host: "a.example.test",
    openssl: ok,
    ours: "accept"
  },
  {
    name: "wildcard *.example.test for a.b.example.test (two labels)",
    chain: ["wildcard-chain.pem"],
    key: "wildcard.key",
    host: "a.b.example.test",
    openssl: { code: 62, text: "hostname mismatch" },
    ours: "HostnameMismatch"
  },
  {
    name: "wildcard *.example.test for example.test (no label)",
    chain: ["wildcard-chain.pem"],
    key: "wildcard.key",
    host: "example.test",
    openssl: { code: 62, text: "hostname mismatch" },
    ours: "HostnameMismatch"
  },
  {
    name: "CN=localhost without SANs, for localhost (CN fallback)",
    chain: ["cn-only-chain.pem"],
    key: "cn-only.key",
    host: "localhost",
    openssl: ok,
    ours: "accept"
  },
  {
    name: "CN=localhost without SANs, for 127.0.0.1",
    chain: ["cn-only-chain.pem"],
    key: "cn-only.key",
    host: "127.0.0.1",
    openssl: { code: 64, text: "IP address mismatch" },
    ours: "HostnameMismatch"
  }
]

/** The effect-ssl server context serving a case's chain. */
const servingContext = (row: ServerCase) =>
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeServer(row.weak === "tls1.2" ? "tls1.2" : "auto")
    if (row.weak !== undefined) yield* SslContext.setCiphers(ctx, "DEFAULT@SECLEVEL=0")
    yield* SslContext.loadCertificateChainPem(ctx, row.chain.map(readFixture).join(""))
    yield* SslContext.loadPrivateKey(ctx, Path.isAbsolute(row.key) ? row.key : fixture(row.key), { rsa: false })
    return ctx
  })

/** `openssl s_client`'s verdict on the server at `port`, verifying `host`. */
const sClientVerdict = (port: number, host: string) =>
  Effect.gen(function*() {
    const name = Net.isIP(host) !== 0 ? ["-verify_ip", host] : ["-verify_hostname", host, "-servername", host]
    const client = yield* spawnOpenssl([
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-verify_return_error",
      "-CAfile",
      "root-ca.pem",
      ...name
    ])
    yield* client.endInput
    const exit = yield* client.exited
    const verdict = verdictOf(client.output(), /Verify return code: 0 \(ok\)/)
    // the exit status agrees: s_client fails when it rejects
    expect(exit === 0, client.output()).toBe(verdict.code === 0)
    return verdict
  })

/**
 * effect-ssl's client connecting to 127.0.0.1:port as `host`: Ssl.connect for names that resolve,
 * and a TCP connection wrapped with that host name for the ones that do not (*.example.test).
 */
const connectAs = (host: string, port: number, context: SslContext.ClientContext) =>
  host === "localhost" || Net.isIP(host) !== 0
    ? Ssl.connect(host, port, context)
    : Effect.flatMap(
      NodeSsl.tcpConnect("127.0.0.1", port),
      (tcp) => Ssl.wrap(tcp, { mode: "connect", hostname: host, context })
    )

describe("a client verifying a server: effect-ssl agrees with openssl s_client", () => {
  for (const row of serverCases) {
    it.scopedLive(`${row.name}: openssl ${show(row.openssl)}, effect-ssl ${row.ours}`, () =>
      Effect.gen(function*() {
        const listener = yield* serveOn(yield* servingContext(row))
        const port = listener.address.port
        const openssl = yield* sClientVerdict(port, row.host)
        expect(openssl).toEqual(row.openssl)

        const result = yield* Effect.either(Effect.scoped(Effect.flatMap(
          connectAs(row.host, port, yield* clientContext()),
          (conn) => conn.session
        )))
        if (row.ours === "accept") {
          if (Either.isLeft(result)) throw new Error(`expected a verified connection, got ${result.left.message}`)
          expect(result.right.verified).toBe(true)
        } else {
          if (Either.isRight(result)) throw new Error(`expected VerifyError ${row.ours}, got a connection`)
          const error = result.left
          expect(error).toBeInstanceOf(SslError.VerifyError)
          expect(error).toMatchObject({ reason: row.ours, side: "client" })
          // the message names the peer (host:port, or the wrapped connection's host name)
          expect(error.message).toContain(row.host)
        }
        // same verdict, accept or reject
        expect(Either.isRight(result)).toBe(openssl.code === 0)
        table.push({
          direction: "client verifies server",
          name: `${row.name} (${row.host})`,
          openssl: show(openssl),
          ours: Either.isRight(result)
            ? "accept (verified)"
            : `VerifyError ${(result.left as SslError.VerifyError).reason}`
        })
      }).pipe(Effect.provide(TestLayer)))
  }

  for (const name of ["rsa512", "rsa1024"] as const) {
    it.scopedLive(`a default server context refuses the ${name} key when listening: InvalidArgumentError, as openssl s_server refuses it`, () =>
      Effect.gen(function*() {
        const ctx = yield* SslContext.makeServer()
        yield* SslContext.loadCertificateChainPem(ctx, readFixture(`${name}.pem`) + readFixture("intermediate-ca.pem"))
        yield* SslContext.loadPrivateKey(ctx, fixture(`${name}.key`))
        const error = yield* Effect.flip(Ssl.listen(0, { hostname: "127.0.0.1", context: ctx }))
        expect(error).toBeInstanceOf(SslError.InvalidArgumentError)
        expect(error).toMatchObject({ argument: "context" })
        expect(error.message).toContain("ee key too small")
        // the openssl command line at its default level does not load it either
        const server = yield* spawnOpenssl([
          "s_server",
          "-accept",
          "127.0.0.1:0",
          "-cert",
          `${name}.pem`,
          "-key",
          `${name}.key`
        ])
        yield* server.exited
        expect(server.output()).toContain("ee key too small")
        table.push({
          direction: "server loads its own certificate",
          name: `${name === "rsa512" ? "RSA-512" : "RSA-1024"} key, default context`,
          openssl: "s_server refuses to load it (ee key too small)",
          ours: "listen fails: InvalidArgumentError context (ee key too small)"
        })
      }).pipe(Effect.provide(TestLayer)))
  }
})

// ---------------------------------------------------------------------------------------------
// A server verifying clients

interface ClientCase {
  readonly name: string
  /** files (fixtures, or issued for this run) concatenated into the chain the client sends */
  readonly chain: () => ReadonlyArray<string>
  readonly key: () => string
  /** a key below security level 2: the client runs at level 0 to be able to present it */
  readonly weak?: "tls1.2" | "auto"
  readonly openssl: OpensslVerdict
  readonly ours: SslError.VerifyReason | "accept"
}

const clientCases: ReadonlyArray<ClientCase> = [
  {
    name: "valid client chain",
    chain: () => ["client-chain.pem"],
    key: () => "client.key",
    openssl: ok,
    ours: "accept"
  },
  {
    name: "missing intermediate (client leaf only)",
    chain: () => ["client.pem"],
    key: () => "client.key",
    openssl: { code: 20, text: "unable to get local issuer certificate" },
    ours: "UnknownIssuer"
  },
  {
    name: "unknown issuer",
    chain: () => ["untrusted-client.pem"],
    key: () => "untrusted-client.key",
    openssl: { code: 20, text: "unable to get local issuer certificate" },
    ours: "UnknownIssuer"
  },
  {
    name: "unknown issuer (with its untrusted root)",
    chain: () => ["untrusted-client.pem", "unknown-ca.pem"],
    key: () => "untrusted-client.key",
    openssl: { code: 19, text: "self-signed certificate in certificate chain" },
    ours: "UnknownIssuer"
  },
  {
    name: "expired",
    chain: () => [issuedFile("expired-client.pem"), "intermediate-ca.pem"],
    key: () => issuedFile("expired-client.key"),
    openssl: { code: 10, text: "certificate has expired" },
    ours: "Expired"
  },
  {
    name: "not yet valid",
    chain: () => [issuedFile("not-yet-valid-client.pem"), "intermediate-ca.pem"],
    key: () => issuedFile("not-yet-valid-client.key"),
    openssl: { code: 9, text: "certificate is not yet valid" },
    ours: "NotYetValid"
  },
  {
    name: "self-signed",
    chain: () => [issuedFile("self-signed-client.pem")],
    key: () => issuedFile("self-signed-client.key"),
    openssl: { code: 18, text: "self-signed certificate" },
    ours: "SelfSigned"
  },
  {
    name: "intermediate not marked CA",
    chain: () => [issuedFile("client-under-not-ca.pem"), "not-ca-intermediate.pem"],
    key: () => issuedFile("client-under-not-ca.key"),
    openssl: { code: 79, text: "invalid CA certificate" },
    ours: "InvalidCa"
  },
  {
    name: "a leaf used as a CA (the client leaf signed another)",
    chain: () => [issuedFile("client-under-leaf.pem"), "client.pem", "intermediate-ca.pem"],
    key: () => issuedFile("client-under-leaf.key"),
    openssl: { code: 79, text: "invalid CA certificate" },
    ours: "InvalidCa"
  },
  {
    name: "RSA-1024 client key",
    chain: () => [issuedFile("rsa1024-client.pem"), "intermediate-ca.pem"],
    key: () => issuedFile("rsa1024-client.key"),
    weak: "auto",
    openssl: { code: 66, text: "EE certificate key too weak" },
    ours: "WeakKey"
  },
  {
    name: "RSA-512 client key",
    chain: () => [issuedFile("rsa512-client.pem"), "intermediate-ca.pem"],
    key: () => issuedFile("rsa512-client.key"),
    weak: "tls1.2",
    openssl: { code: 66, text: "EE certificate key too weak" },
    ours: "WeakKey"
  }
]

/** An effect-ssl client context presenting a case's certificate. */
const presenting = (row: ClientCase) =>
  Effect.gen(function*() {
    const ctx = yield* clientContext(row.weak === "tls1.2" ? "tls1.2" : "auto")
    if (row.weak !== undefined) yield* SslContext.setCiphers(ctx, "DEFAULT@SECLEVEL=0")
    yield* SslContext.loadCertificateChainPem(ctx, row.chain().map(readFixture).join(""))
    const key = row.key()
    yield* SslContext.loadPrivateKey(ctx, Path.isAbsolute(key) ? key : fixture(key), { rsa: false })
    return ctx
  })

/** Shows the certificate to a server at `port`, then ends; whatever the client sees is ignored. */
const present = (port: number, context: SslContext.ClientContext) =>
  Effect.exit(Effect.scoped(Effect.flatMap(Ssl.connect("localhost", port, context), (conn) =>
    // TLS 1.3: the server looks at the certificate after the client's handshake is over; its
    // verdict arrives with the next read (an alert, or the close_notify that follows ours).
    Effect.zipRight(conn.output.close, conn.input.read()))))

describe("a server verifying clients: effect-ssl agrees with openssl s_server", () => {
  for (const row of clientCases) {
    it.scopedLive(`${row.name}: openssl ${show(row.openssl)}, effect-ssl ${row.ours}`, () =>
      Effect.gen(function*() {
        // openssl s_server -Verify 1 -verify_return_error, one connection
        const { peer, port } = yield* sServer([
          "-Verify",
          "1",
          "-verify_return_error",
          "-CAfile",
          "root-ca.pem",
          "-naccept",
          "1"
        ])
        yield* present(port, yield* presenting(row))
        yield* peer.exited
        const openssl = verdictOf(peer.output(), /^Client certificate$[^]*^CIPHER is /m)
        expect(openssl).toEqual(row.openssl)

        // an effect-ssl server that requires a client certificate under the fixture root
        const ctx = yield* SslContext.makeServer()
        yield* SslContext.loadCertificateChain(ctx, fixture("server-chain.pem"))
        yield* SslContext.loadPrivateKey(ctx, fixture("server.key"))
        yield* SslContext.setVerify(ctx, true)
        yield* SslContext.loadVerifyRootCertificates(ctx, fixture("root-ca.pem"))
        const listener = yield* Ssl.listen(0, { hostname: "127.0.0.1", context: ctx })
        const accepted = yield* Effect.fork(
          Effect.either(Effect.scoped(Effect.flatMap(Ssl.accept(listener), (conn) => conn.session)))
        )
        yield* present(listener.address.port, yield* presenting(row))
        const result = yield* Fiber.join(accepted)
        if (row.ours === "accept") {
          if (Either.isLeft(result)) throw new Error(`expected a verified client, got ${result.left.message}`)
          expect(result.right.verified).toBe(true)
        } else {
          if (Either.isRight(result)) throw new Error(`expected VerifyError ${row.ours}, got a connection`)
          expect(result.left).toBeInstanceOf(SslError.VerifyError)
          expect(result.left).toMatchObject({ reason: row.ours, side: "server" })
        }
        expect(Either.isRight(result)).toBe(openssl.code === 0)
        table.push({
          direction: "server verifies client",
          name: row.name,
          openssl: show(openssl),
          ours: Either.isRight(result)
            ? "accept (verified)"
            : `VerifyError ${(result.left as SslError.VerifyError).reason}`
        })
      }).pipe(Effect.provide(TestLayer)))
  }
})
