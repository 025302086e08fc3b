/**
 * The `effect-ssl` command end to end: every test spawns the real executable
 * (`node packages/cli/bin/effect-ssl.js …`) and talks to it with real peers (`openssl s_client`,
 * `openssl s_server`, `curl`, node:tls) and compares against `sha1sum`.
 */
import { TestCertificates } from "@effect-ssl/core"
import { type ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Tls from "node:tls"
import { fileURLToPath } from "node:url"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { fixture } from "../../core/test/helpers/Fixtures.js"
import { sServerAccepting, sServerArgs } from "../../core/test/helpers/Openssl.js"

const bin = fileURLToPath(new URL("../bin/effect-ssl.js", import.meta.url))
const testPem = TestCertificates.path

// ---------------------------------------------------------------------------------------------
// Child processes: every one is killed (if still running) and awaited after each test.

interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

interface Proc {
  readonly child: ChildProcessWithoutNullStreams
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves once `pattern` shows up on the stream; rejects if the process ends first. */
  readonly waitFor: (stream: "stdout" | "stderr", pattern: RegExp) => Promise<RegExpMatchArray>
  /** Resolves when the process has exited and its output is closed. */
  readonly exited: Promise<Exited>
}

const procs = new Set<Proc>()

interface SpawnOptions {
  readonly cwd?: string
  /** added to this process's environment */
  readonly env?: Record<string, string>
}

const spawnProc = (command: string, args: ReadonlyArray<string>, options: SpawnOptions = {}): Proc => {
  const child = spawn(command, args, {
    cwd: options.cwd ?? process.cwd(),
    stdio: "pipe",
    ...(options.env !== undefined ? { env: { ...process.env, ...options.env } } : {})
  })
  const output = { stdout: "", stderr: "" }
  const checks = new Set<() => void>()
  let done = false
  child.stdout.setEncoding("utf8")
  child.stderr.setEncoding("utf8")
  child.stdout.on("data", (text: string) => {
    output.stdout += text
    for (const check of checks) check()
  })
  child.stderr.on("data", (text: string) => {
    output.stderr += text
    for (const check of checks) check()
  })
  // Writing to a peer that already exited must not crash the test run.
  child.stdin.on("error", () => {})
  const exited = new Promise<Exited>((resolve) => {
    child.on("close", (code, signal) => {
      done = true
      for (const check of checks) check()
      resolve({ code, signal })
    })
  })
  const waitFor = (stream: "stdout" | "stderr", pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = output[stream].match(pattern)
        if (match !== null) {
          checks.delete(check)
          resolve(match)
        } else if (done) {
          checks.delete(check)
          reject(
            new Error(
              `${command} ${args.join(" ")} ended without printing ${pattern} on ${stream}\n` +
                `stdout: ${output.stdout}\nstderr: ${output.stderr}`
            )
          )
        }
      }
      checks.add(check)
      check()
    })
  const proc: Proc = { child, stdout: () => output.stdout, stderr: () => output.stderr, waitFor, exited }
  procs.add(proc)
  return proc
}

const cli = (args: ReadonlyArray<string>, options: SpawnOptions = {}) =>
  spawnProc(process.execPath, [bin, ...args], options)

/** Runs the command to its end with `input` on stdin. */
const runCli = async (
  args: ReadonlyArray<string>,
  options: SpawnOptions & { readonly input?: string | Uint8Array } = {}
) => {
  const proc = cli(args, options)
  proc.child.stdin.end(options.input ?? "")
  const exit = await proc.exited
  return { ...exit, stdout: proc.stdout(), stderr: proc.stderr() }
}

afterEach(async () => {
  for (const proc of procs) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGKILL")
    await proc.exited
  }
  procs.clear()
})

const exec = (command: string, args: ReadonlyArray<string>, options: { cwd?: string; input?: string } = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(command, args, { cwd: options.cwd, encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resolve({ code, stdout, stderr })
    })
    child.stdin?.on("error", () => {})
    child.stdin?.end(options.input ?? "")
  })

/** `effect-ssl serve` on an ephemeral port, once it says it is listening. */
const serve = async (args: ReadonlyArray<string> = [], options: SpawnOptions = {}) => {
  const proc = cli(["serve", "0", ...args], options)
  const match = await proc.waitFor("stderr", /listening on 127\.0\.0\.1:(\d+)/)
  return { proc, port: Number(match[1]) }
}

/**
 * `openssl s_server` on 127.0.0.1, on a port the kernel picks, serving `leaf` with the fixture
 * intermediate for one connection, once it accepts.
 */
const sServer = async (leaf: string, key: string, extra: ReadonlyArray<string> = []) => {
  // s_server's stdin stays open (a pipe): at its end s_server would shut down.
  const proc = spawnProc("openssl", [...sServerArgs("127.0.0.1:0", leaf, key), "-naccept", "1", ...extra])
  const accepting = await proc.waitFor("stdout", sServerAccepting)
  return { proc, port: Number(accepting[1]) }
}

/**
 * s_server options that require a client certificate chaining to root-ca.pem and end the
 * handshake when there is none or it does not verify (without -verify_return_error s_server only
 * reports a bad one).
 */
const requireClientCertificate = ["-Verify", "1", "-verify_return_error", "-CAfile", fixture("root-ca.pem")]

// ---------------------------------------------------------------------------------------------

describe("effect-ssl demo", () => {
  it("runs on the test certificate, verifies the server, reports matching digests, and makes an HTTPS request", async () => {
    const result = await runCli(["demo", "--size", "4"])
    expect(result.stderr).toContain("progress: 100% (8.0 MiB of 8.0 MiB)")
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^ {2}protocol: TLSv1\.[23]$/m)
    expect(result.stdout).toMatch(/^ {2}cipher: \S+$/m)
    expect(result.stdout).toMatch(/^ {2}subject: .*CN=localhost$/m)
    expect(result.stdout).toMatch(/^ {2}fingerprint \(SHA-256\): ([0-9A-F]{2}:){31}[0-9A-F]{2}$/m)
    expect(result.stdout).toMatch(/^ {2}verified: yes$/m)
    expect(result.stdout).toMatch(/client → server: 4\.0 MiB in [\d.]+ s \([\d.]+ MiB\/s\)/)
    const digest = (label: string) => result.stdout.match(new RegExp(`^  ${label}: +([0-9a-f]{40})`, "m"))?.[1]
    expect(digest("client sent")).toMatch(/^[0-9a-f]{40}$/)
    expect(digest("server received")).toBe(digest("client sent"))
    expect(digest("server sent")).toMatch(/^[0-9a-f]{40}$/)
    expect(digest("client received")).toBe(digest("server sent"))
    expect(digest("client sent")).not.toBe(digest("server sent"))
    expect(result.stdout).toContain("All digests match.")
    // then one HTTPS request, HttpClient to HttpServer, both on effect-ssl
    expect(result.stdout).toMatch(
      /^ {2}GET https:\/\/localhost:\d+\/hello → 200 hello from the HTTPS server layer: GET \/hello over TLSv1\.3, ALPN http\/1\.1$/m
    )
  })
})

describe("effect-ssl serve", () => {
  it("echoes to openssl s_client, which verifies it against the test certificate", async () => {
    const { port, proc: server } = await serve()
    expect(server.stderr()).toMatch(/WARNING: no --cert\/--key given/)
    const client = spawnProc("openssl", [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-CAfile",
      testPem,
      "-verify_return_error"
    ])
    client.child.stdin.write("hello effect-ssl\n")
    await client.waitFor("stdout", /^hello effect-ssl$/m)
    expect(client.stdout()).toContain("Verify return code: 0 (ok)")
    client.child.stdin.end()
    expect((await client.exited).code).toBe(0)
    await server.waitFor("stderr", /127\.0\.0\.1:\d+ TLSv1\.3 \S+ in=17 out=17 ok$/m)
    server.child.kill("SIGTERM")
    expect(await server.exited).toEqual({ code: 0, signal: null })
  })

  it("--http answers curl with 200 naming the protocol, logs each request, and survives garbage and vanishing clients", async () => {
    const { port, proc: server } = await serve(["--http"])
    expect(server.stderr()).toMatch(/listening on 127\.0\.0\.1:\d+ \(http mode\)/)

    // Plain text instead of a TLS handshake.
    const garbage = Net.connect(port, "127.0.0.1")
    garbage.on("error", () => {})
    garbage.end("GET / HTTP/1.0\r\n\r\n")
    await server.waitFor(
      "stderr",
      /failed: TLS handshake with 127\.0\.0\.1:\d+ failed \(server side\): the peer does not speak TLS/
    )
    garbage.destroy()

    // A client that completes its handshake, sends half a request and vanishes.
    const vanishing = Tls.connect({ host: "127.0.0.1", port, ca: TestCertificates.pem, servername: "localhost" })
    vanishing.on("error", () => {})
    await new Promise<void>((resolve) => vanishing.once("secureConnect", () => resolve()))
    vanishing.write("GET / HT")
    await new Promise<void>((resolve) => vanishing.write("", () => resolve()))
    vanishing.destroy()

    const curl = await exec("curl", [
      "--silent",
      "--show-error",
      "--noproxy",
      "*",
      "--cacert",
      testPem,
      "--write-out",
      "\n%{http_code}",
      `https://localhost:${port}/hello`
    ])
    expect(curl.stderr).toBe("")
    expect(curl.code).toBe(0)
    const [body, status] = curl.stdout.split(/\n(?=\d+$)/)
    expect(status).toBe("200")
    expect(body).toMatch(/^Hello from effect-ssl serve: GET \/hello over TLSv1\.3 \(\S+\)\.\n$/)
    await server.waitFor("stderr", /127\.0\.0\.1:\d+ TLSv1\.3 \S+ "GET \/hello" 200$/m)

    server.child.kill("SIGTERM")
    expect(await server.exited).toEqual({ code: 0, signal: null })
  })

  it("--http closes clients that finish the handshake and send nothing, within --headers-timeout", async () => {
    const { port, proc: server } = await serve(["--http", "--headers-timeout", "0.5"])
    const silent = 10
    const start = Date.now()
    const closed = await Promise.all(
      Array.from(
        { length: silent },
        () =>
          new Promise<{ readonly text: string; readonly millis: number }>((resolve, reject) => {
            const client = Tls.connect({ host: "127.0.0.1", port, ca: TestCertificates.pem, servername: "localhost" })
            let text = ""
            client.setEncoding("utf8")
            client.on("data", (chunk: string) => {
              text += chunk
            })
            client.on("error", () => {})
            client.once("secureConnect", () => {
              // says nothing
            })
            client.once("close", () => resolve({ text, millis: Date.now() - start }))
            // a guard with a message instead of the test runner's timeout
            setTimeout(() => reject(new Error("a silent client is still open after 5 s")), 5000).unref()
          })
      )
    )
    for (const { millis, text } of closed) {
      expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
      expect(millis).toBeGreaterThanOrEqual(500)
      expect(millis).toBeLessThan(2500)
    }
    server.child.kill("SIGTERM")
    expect(await server.exited).toEqual({ code: 0, signal: null })
  })

  it("--http --verify-client --ca: curl with a client certificate is served and logged with it; without one it is refused", async () => {
    const { port, proc: server } = await serve(["--http", "--verify-client", "--ca", fixture("root-ca.pem")])
    const curlArgs = ["--silent", "--show-error", "--noproxy", "*", "--cacert", testPem]
    const refused = await exec("curl", [...curlArgs, `https://localhost:${port}/private`])
    expect(refused.code).not.toBe(0)
    await server.waitFor("stderr", /failed: .*requires a client certificate/)
    const served = await exec("curl", [
      ...curlArgs,
      "--cert",
      fixture("client-chain.pem"),
      "--key",
      fixture("client.key"),
      `https://localhost:${port}/private`
    ])
    expect(served.code).toBe(0)
    expect(served.stdout).toMatch(/^Hello from effect-ssl serve: GET \/private over TLSv1\.3/)
    await server.waitFor("stderr", /TLSv1\.3 \S+ client=.*CN=effect-ssl test client "GET \/private" 200$/m)
    server.child.kill("SIGTERM")
    expect(await server.exited).toEqual({ code: 0, signal: null })
  })

  it("--passin unlocks an encrypted --key: from the environment, a file, or the argument", async () => {
    const passFile = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-ssl-passin-")), "pass")
    Fs.writeFileSync(passFile, "secret\nnot this line\n")
    const ways: ReadonlyArray<readonly [string, ReadonlyArray<string>, Record<string, string>]> = [
      ["server.encrypted.key", ["--passin", "env:EFFECT_SSL_TEST_PASS"], { EFFECT_SSL_TEST_PASS: "secret" }],
      ["server.encrypted-legacy.key", ["--passin", `file:${passFile}`], {}],
      ["server.encrypted.key", ["--passin", "pass:secret"], {}]
    ]
    for (const [key, passin, env] of ways) {
      const identity = ["--cert", fixture("server-chain.pem"), "--key", fixture(key)]
      const { port, proc: server } = await serve([...identity, ...passin], { env })
      const client = Tls.connect({
        host: "127.0.0.1",
        port,
        ca: Fs.readFileSync(fixture("root-ca.pem")),
        servername: "localhost"
      })
      client.setEncoding("utf8")
      const echoed = new Promise<string>((resolve, reject) => {
        client.once("data", resolve)
        client.once("error", reject)
      })
      client.write("locked key\n")
      expect(await echoed).toBe("locked key\n")
      client.destroy()
      server.child.kill("SIGTERM")
      expect(await server.exited).toEqual({ code: 0, signal: null })
    }
  })

  it("an encrypted --key without --passin, with a wrong one, or with a source that gives none fails with exit 1", async () => {
    const identity = ["serve", "0", "--cert", fixture("server-chain.pem"), "--key", fixture("server.encrypted.key")]
    const failures: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [[], /server\.encrypted\.key: it is encrypted with a passphrase; give it with --passin/],
      // (with OpenSSL's reason, which also tells a key it cannot read at all, "unsupported", from a
      // wrong passphrase)
      [
        ["--passin", "pass:wrong"],
        /server\.encrypted\.key: the passphrase --passin gave does not decrypt it \(.*bad decrypt\)$/m
      ],
      [
        ["--passin", "env:EFFECT_SSL_TEST_UNSET"],
        /--passin env:EFFECT_SSL_TEST_UNSET: the environment variable EFFECT_SSL_TEST_UNSET is not set/
      ],
      [["--passin", "file:/nonexistent/pass"], /--passin file:\/nonexistent\/pass: cannot read the file/],
      // a mistyped source may be the passphrase itself: not echoed
      [
        ["--passin", "s3cret"],
        /^effect-ssl serve: --passin: expected env:NAME, file:PATH or pass:TEXT \(the value is not shown\)$/m
      ],
      [["--passin", "env:"], /--passin: expected env:NAME/]
    ]
    for (const [passin, message] of failures) {
      const result = await runCli([...identity, ...passin])
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(message)
      expect(result.stderr).not.toMatch(/listening on/)
      expect(result.stderr).not.toContain("s3cret")
    }
    const alone = await runCli(["serve", "0", "--passin", "pass:secret"])
    expect(alone.code).toBe(1)
    expect(alone.stderr).toMatch(/--passin needs --cert/)
  })

  it("stops on SIGINT with a client connected: the client sees the end, the process exits 0", async () => {
    const { port, proc: server } = await serve()
    const client = Tls.connect({ host: "127.0.0.1", port, ca: TestCertificates.pem, servername: "localhost" })
    client.on("error", () => {})
    client.setEncoding("utf8")
    const ended = new Promise<string>((resolve) => {
      client.once("end", () => resolve("end"))
      client.once("close", () => resolve("close"))
    })
    await new Promise<void>((resolve) => client.once("secureConnect", () => resolve()))
    client.write("ping\n")
    await new Promise<void>((resolve) => client.once("data", () => resolve()))

    server.child.kill("SIGINT")
    expect(await server.exited).toEqual({ code: 0, signal: null })
    expect(await ended).toBe("end")
    expect(server.stderr()).toMatch(/in=5 out=5 closed \(server shutting down\)$/m)
    expect(server.stderr()).toContain("1 open connection closed")
    client.destroy()
  })
})

describe("effect-ssl connect", () => {
  it("talks to openssl s_server both ways and closes with close_notify at the end of stdin", async () => {
    const { port, proc: server } = await sServer("server.pem", "server.key")
    const client = cli(["connect", "localhost", String(port), "--ca", fixture("root-ca.pem")])
    client.child.stdin.write("hello from effect-ssl\n")
    await server.waitFor("stdout", /^hello from effect-ssl$/m)
    server.child.stdin.write("hello from s_server\n")
    await client.waitFor("stdout", /^hello from s_server$/m)
    client.child.stdin.end()
    const exit = await client.exited
    expect(client.stderr()).toMatch(/^ {2}verified: yes$/m)
    expect(client.stderr()).toMatch(/^ {2}subject: \/O=effect-ssl\/CN=localhost$/m)
    expect(client.stderr()).toContain("closed by the server (sent 22 bytes, received 20 bytes)")
    expect(exit).toEqual({ code: 0, signal: null })
    expect(client.stdout()).toBe("hello from s_server\n")
    // s_server saw our close_notify: it ended the session cleanly.
    await server.exited
    expect(server.stdout()).toContain("DONE")
  })

  it("--alpn offers application protocols and reports the one s_server chose", async () => {
    const { port, proc: server } = await sServer("server.pem", "server.key", ["-alpn", "h2"])
    const client = cli(["connect", "localhost", String(port), "--ca", fixture("root-ca.pem"), "--alpn", "http/1.1,h2"])
    await client.waitFor("stderr", /^ {2}alpn: h2$/m)
    client.child.stdin.end()
    expect((await client.exited).code).toBe(0)
    await server.exited
  })

  /** `connect` to `port`, trusting the test root, with the test client's chain and its encrypted key. */
  const connectWithEncryptedKey = (port: number) => [
    "connect",
    "localhost",
    String(port),
    "--ca",
    fixture("root-ca.pem"),
    "--cert",
    fixture("client-chain.pem"),
    "--key",
    fixture("client.encrypted.key")
  ]

  it("--cert, --key and --passin present a client certificate with an encrypted key to an s_server that requires one", async () => {
    const { port, proc: server } = await sServer("server.pem", "server.key", requireClientCertificate)
    const client = cli([...connectWithEncryptedKey(port), "--passin", "env:EFFECT_SSL_TEST_PASS"], {
      env: { EFFECT_SSL_TEST_PASS: "secret" }
    })
    // (fails at once, with the client's stderr, if it exits instead: a key it could not load)
    await client.waitFor("stderr", /^ {2}verified: yes$/m)
    client.child.stdin.write("hello from a client with a certificate\n")
    await server.waitFor("stdout", /^hello from a client with a certificate$/m)
    // s_server verified the client certificate to root-ca.pem (on stderr, during the handshake)
    // and printed its subject (on stdout, before the data)
    expect(server.stdout()).toMatch(/^subject=O = effect-ssl, CN = effect-ssl test client$/m)
    await server.waitFor("stderr", /^depth=0 O = effect-ssl, CN = effect-ssl test client\nverify return:1$/m)
    server.child.stdin.write("hello, test client\n")
    await client.waitFor("stdout", /^hello, test client$/m)
    client.child.stdin.end()
    expect(await client.exited).toEqual({ code: 0, signal: null })
    expect(client.stderr()).toContain("closed by the server (sent 39 bytes, received 19 bytes)")
    expect(client.stdout()).toBe("hello, test client\n")
    await server.exited
    expect(server.stdout()).toContain("DONE")
  })

  it("an encrypted --key without --passin, or with a wrong one, fails with exit 1 before connecting", async () => {
    const { port } = await sServer("server.pem", "server.key", requireClientCertificate)
    const failures: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [
        [],
        /^effect-ssl connect: Cannot load a private key from \S*client\.encrypted\.key: it is encrypted with a passphrase; give it with --passin /
      ],
      [
        ["--passin", "pass:wrong"],
        /^effect-ssl connect: Cannot load a private key from \S*client\.encrypted\.key: the passphrase --passin gave does not decrypt it \(.*bad decrypt\)$/m
      ]
    ]
    for (const [passin, message] of failures) {
      const result = await runCli([...connectWithEncryptedKey(port), ...passin])
      expect(result.code).toBe(1)
      expect(result.stdout).toBe("")
      expect(result.stderr).toMatch(message)
      expect(result.stderr).not.toMatch(/connected to/)
      expect(result.stderr.trim().split("\n")).toHaveLength(1)
    }
  })

  it("fails with the typed reason and exit 1 against an expired certificate", async () => {
    const { port } = await sServer("expired-chain.pem", "expired.key")
    const result = await runCli(["connect", "localhost", String(port), "--ca", fixture("root-ca.pem")])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr).toMatch(
      /^effect-ssl connect: Cannot verify localhost:\d+'s certificate: the certificate has expired/
    )
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
  })

  it("fails with a host-name reason and exit 1 against a certificate for another host", async () => {
    const { port } = await sServer("wrong-host-chain.pem", "wrong-host.key")
    const result = await runCli(["connect", "localhost", String(port), "--ca", fixture("root-ca.pem")])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(
      /^effect-ssl connect: Cannot verify localhost:\d+'s certificate: the certificate is not valid for this host name/
    )
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
  })
})

describe("effect-ssl sha1", () => {
  let dir: string
  const files = ["text.txt", "empty", "random.bin", "with space.txt"]

  beforeAll(() => {
    dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-ssl-sha1-"))
    Fs.writeFileSync(Path.join(dir, "text.txt"), "The quick brown fox jumps over the lazy dog\n")
    Fs.writeFileSync(Path.join(dir, "empty"), "")
    const random = new Uint8Array(300_000)
    for (let i = 0, x = 7; i < random.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0
      random[i] = x >>> 24
    }
    Fs.writeFileSync(Path.join(dir, "random.bin"), random)
    Fs.writeFileSync(Path.join(dir, "with space.txt"), "spaces\r\n")
  })

  afterAll(() => {
    Fs.rmSync(dir, { recursive: true, force: true })
  })

  it("prints exactly what sha1sum prints, for files and for standard input", async () => {
    const input = "standard input\n".repeat(1000)
    const [ours, theirs, oursStdin, theirsStdin] = await Promise.all([
      runCli(["sha1", ...files], { cwd: dir }),
      exec("sha1sum", files, { cwd: dir }),
      runCli(["sha1"], { input }),
      exec("sha1sum", [], { input })
    ])
    expect(theirs.code).toBe(0)
    expect(ours.stdout).toBe(theirs.stdout)
    expect(ours.code).toBe(0)
    expect(oursStdin.stdout).toBe(theirsStdin.stdout)
    expect(oursStdin.stdout).toMatch(/^[0-9a-f]{40} {2}-\n$/)
    expect(oursStdin.code).toBe(0)
  })

  it("reports a missing file, still prints the others, and exits 1", async () => {
    const args = ["text.txt", "missing.txt", "random.bin"]
    const [ours, theirs] = await Promise.all([
      runCli(["sha1", ...args], { cwd: dir }),
      exec("sha1sum", args, { cwd: dir })
    ])
    expect(theirs.code).toBe(1)
    expect(ours.stdout).toBe(theirs.stdout)
    expect(ours.stdout.split("\n")).toHaveLength(3)
    expect(ours.stderr).toBe("effect-ssl sha1: missing.txt: No such file or directory\n")
    expect(ours.code).toBe(1)
  })
})
