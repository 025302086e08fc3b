/**
 * Certificates and keys read, matched and checked by OpenSSL through node:crypto: the node
 * package's `Pki` service, the `Ssl.PeerCertificate` of a node:crypto certificate, and the
 * identity options a secure context is built with.
 *
 * @internal
 */
import { Pki, type Ssl, type SslContext as SslContextT, SslError } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import * as Net from "node:net"
import * as Tls from "node:tls"

// ---------------------------------------------------------------------------------------------
// Certificates met again

/**
 * A certificate parsed by OpenSSL, from its DER. OpenSSL 3 takes about 0.1 ms to parse one (its
 * public key goes through the provider decoders: more than the rest of a client's verification,
 * where node:tls hands out the certificate only as DER or as an object of strings), and a program
 * meets the same few certificates in handshake after handshake: the last ones parsed are kept,
 * keyed by their bytes. What is read from them (host checks, names, keys) is a function of
 * those bytes alone.
 *
 * @internal
 */
export const parsedCertificate = (der: Uint8Array): Crypto.X509Certificate => {
  for (let i = 0; i < recentlyParsed.length; i++) {
    const known = recentlyParsed[i]!
    if (known.der.length === der.length && Buffer.compare(known.der, der) === 0) {
      if (i > 0) {
        recentlyParsed.splice(i, 1)
        recentlyParsed.unshift(known)
      }
      return known.x509
    }
  }
  // (a copy: the caller's bytes may change, the key must not)
  const own = new Uint8Array(der)
  const x509 = new Crypto.X509Certificate(own)
  recentlyParsed.unshift({ der: own, x509 })
  if (recentlyParsed.length > maxRecentlyParsed) recentlyParsed.pop()
  return x509
}

const maxRecentlyParsed = 16
const recentlyParsed: Array<{ readonly der: Uint8Array; readonly x509: Crypto.X509Certificate }> = []

// ---------------------------------------------------------------------------------------------
// PEM framing

interface Block {
  readonly label: string
  /** the block as it stood, BEGIN to END, for OpenSSL to read */
  readonly text: string
  /** false when the END line is missing: the file was cut short */
  readonly terminated: boolean
  /** PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` header */
  readonly encrypted: boolean
}

const beginLine = /^-----BEGIN ([^-]+(?:-[^-]+)*)-----$/
const endLine = /^-----END ([^-]+(?:-[^-]+)*)-----$/

/**
 * The PEM blocks of a text, in order. node:crypto reads one block per call (`X509Certificate` the
 * first certificate, `createPrivateKey` the first key), so a chain file is cut at its BEGIN and END
 * lines here and OpenSSL reads each block; nothing inside a block is looked at. Text around the
 * blocks is skipped, as OpenSSL does, and a BEGIN that meets another BEGIN or the end of the text
 * before its END makes an unterminated block, so that a truncated file is reported, not read short.
 */
const blocksOf = (text: string): ReadonlyArray<Block> => {
  const lines = text.split(/\r?\n|\r/).map((line) => line.trim())
  const blocks: Array<Block> = []
  let i = 0
  while (i < lines.length) {
    const begin = beginLine.exec(lines[i]!)
    const first = i++
    if (begin === null) continue
    const label = begin[1]!
    let terminated = false
    while (i < lines.length && !beginLine.test(lines[i]!)) {
      const end = endLine.exec(lines[i++]!)
      if (end !== null) {
        // A mismatched END label is as broken as a missing one.
        terminated = end[1] === label
        break
      }
    }
    const body = lines.slice(first, i)
    const encrypted = label === "ENCRYPTED PRIVATE KEY" ||
      body.some((line) => /^Proc-Type:\s*4,\s*ENCRYPTED$/i.test(line))
    blocks.push({ label, text: `${body.join("\n")}\n`, terminated, encrypted })
  }
  return blocks
}

const isPemText = (text: string): boolean => text.includes("-----BEGIN")

const bufferOf = (data: Uint8Array): Buffer => Buffer.from(data.buffer, data.byteOffset, data.byteLength)

const textOf = (
  data: string | Uint8Array
): string => (typeof data === "string" ? data : bufferOf(data).toString("latin1"))

const where = (index: number, block: Block) => `${block.label} block ${index + 1}`

const labelsIn = (blocks: ReadonlyArray<Block>): string =>
  blocks.length === 0 ? "" : `found ${[...new Set(blocks.map((block) => block.label))].join(", ")}`

// OpenSSL's error text names its library and function: "error:0480006C:PEM routines::no start line".
const reasonOf = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).replace(/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:/, "")

const codeOf = (error: unknown): unknown => (error as { readonly code?: unknown } | null)?.code

const certificateFailure = (path: string) => (reason: SslError.CertificateLoadReason, cause?: string) =>
  Effect.fail(new SslError.CertificateLoadError({ path, reason, cause }))

const keyFailure = (path: string) => (reason: SslError.PrivateKeyLoadReason, cause?: string) =>
  Effect.fail(new SslError.PrivateKeyLoadError({ path, reason, cause }))

// ---------------------------------------------------------------------------------------------
// Certificates

const certificateLabels = new Set(["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"])

// A plain Uint8Array copy of the DER (a Buffer's slice shares memory, and the file stays unkept);
// the PEM is OpenSSL's own, without the trust settings a TRUSTED CERTIFICATE carries.
const certificateOf = (x509: Crypto.X509Certificate): Pki.Certificate => ({
  pem: x509.toString(),
  der: new Uint8Array(x509.raw)
})

const parseCertificates = (
  data: string | Uint8Array,
  path: string
): Effect.Effect<ReadonlyArray<Pki.Certificate>, SslError.CertificateLoadError> =>
  Effect.suspend(() => {
    const fail = certificateFailure(path)
    const text = textOf(data)
    if (!isPemText(text)) {
      if (typeof data === "string" || data[0] !== 0x30) return fail("Malformed", "no PEM block in it")
      try {
        return Effect.succeed([certificateOf(new Crypto.X509Certificate(data))])
      } catch (error) {
        return fail("Malformed", `DER data that is not an X.509 certificate: ${reasonOf(error)}`)
      }
    }
    const blocks = blocksOf(text)
    if (blocks.length === 0) return fail("Malformed", "no complete PEM BEGIN line in it")
    const out: Array<Pki.Certificate> = []
    for (const [index, block] of blocks.entries()) {
      if (!certificateLabels.has(block.label)) continue
      const at = where(index, block)
      if (!block.terminated) return fail("Malformed", `${at} has no END line: the file looks truncated`)
      try {
        out.push(certificateOf(new Crypto.X509Certificate(block.text)))
      } catch (error) {
        return fail("Malformed", `${at}: ${reasonOf(error)}`)
      }
    }
    return out.length === 0 ? fail("NoCertificate", labelsIn(blocks)) : Effect.succeed(out)
  })

// ---------------------------------------------------------------------------------------------
// Private keys

const keyTypes: Record<string, Pki.KeyType> = {
  rsa: "rsa",
  "rsa-pss": "rsa-pss",
  ec: "ec",
  ed25519: "ed25519",
  ed448: "ed448",
  dsa: "dsa"
}

const isRsa = (type: Pki.KeyType): boolean => type === "rsa" || type === "rsa-pss"

// Whatever it was read from, the adapter gets one form: unencrypted PKCS#8.
const privateKeyOf = (key: Crypto.KeyObject): Pki.PrivateKey => ({
  pem: key.export({ type: "pkcs8", format: "pem" }) as string,
  type: keyTypes[key.asymmetricKeyType ?? ""] ?? "other"
})

// A legacy-encrypted block names its key type in its label, so `rsa: true` can pass over it
// without its passphrase.
const typeByLabel: Record<string, Pki.KeyType> = {
  "RSA PRIVATE KEY": "rsa",
  "EC PRIVATE KEY": "ec",
  "DSA PRIVATE KEY": "dsa"
}

type KeyOutcome = Effect.Effect<Pki.PrivateKey, SslError.PrivateKeyLoadError>

/**
 * Why an encrypted key did not open with the passphrase given: a cipher only OpenSSL's legacy
 * provider has (DES), which no passphrase would open here, or else the passphrase (a wrong one may
 * also decrypt to bytes that do not parse: either way, it is wrong).
 */
const undecrypted = (error: unknown): "Unsupported" | "BadPassphrase" =>
  codeOf(error) === "ERR_OSSL_EVP_UNSUPPORTED" ? "Unsupported" : "BadPassphrase"

const keyFromPem = (text: string, path: string, options: Pki.KeyOptions): KeyOutcome => {
  const fail = keyFailure(path)
  const blocks = blocksOf(text)
  if (blocks.length === 0) return fail("Malformed", "no complete PEM BEGIN line in it")
  let skipped = 0
  for (const [index, block] of blocks.entries()) {
    if (!block.label.endsWith("PRIVATE KEY")) continue
    const at = where(index, block)
    if (!block.terminated) return fail("Malformed", `${at} has no END line: the file looks truncated`)
    if (block.encrypted) {
      const known = typeByLabel[block.label]
      if (options.rsa && known !== undefined && !isRsa(known)) {
        skipped++
        continue
      }
      if (options.passphrase === undefined) return fail("Encrypted", at)
    }
    let key: Pki.PrivateKey
    try {
      key = privateKeyOf(Crypto.createPrivateKey({
        key: block.text,
        format: "pem",
        ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {})
      }))
    } catch (error) {
      return fail(block.encrypted ? undecrypted(error) : "Malformed", `${at}: ${reasonOf(error)}`)
    }
    if (options.rsa && !isRsa(key.type)) {
      skipped++
      continue
    }
    return Effect.succeed(key)
  }
  return skipped > 0
    ? fail("NoRsaKey", `skipped ${skipped} key${skipped === 1 ? "" : "s"} of another type`)
    : fail("NoKey", labelsIn(blocks))
}

const checkRsa = (key: Pki.PrivateKey, options: Pki.KeyOptions, fail: ReturnType<typeof keyFailure>): KeyOutcome =>
  options.rsa && !isRsa(key.type) ? fail("NoRsaKey", `the key is ${key.type.toUpperCase()}`) : Effect.succeed(key)

// DER carries no label: OpenSSL's decoders are tried in turn, as `openssl pkey -inform DER` does.
const keyFromDer = (der: Uint8Array, path: string, options: Pki.KeyOptions): KeyOutcome => {
  const fail = keyFailure(path)
  const read = (type: "pkcs8" | "pkcs1" | "sec1", passphrase?: string) =>
    checkRsa(
      privateKeyOf(Crypto.createPrivateKey({
        key: bufferOf(der),
        format: "der",
        type,
        ...(passphrase !== undefined ? { passphrase } : {})
      })),
      options,
      fail
    )
  try {
    return read("pkcs8")
  } catch (error) {
    // an EncryptedPrivateKeyInfo
    if (codeOf(error) === "ERR_MISSING_PASSPHRASE") {
      if (options.passphrase === undefined) return fail("Encrypted", "an EncryptedPrivateKeyInfo")
      try {
        return read("pkcs8", options.passphrase)
      } catch (error) {
        return fail(undecrypted(error), reasonOf(error))
      }
    }
  }
  for (const type of ["pkcs1", "sec1"] as const) {
    try {
      return read(type)
    } catch {
      // the next decoder
    }
  }
  try {
    new Crypto.X509Certificate(der)
    return fail("NoKey", "this is an X.509 certificate")
  } catch {
    return fail("Malformed", "not a PKCS#8, PKCS#1 or SEC1 private key")
  }
}

const parsePrivateKey = (data: string | Uint8Array, path: string, options: Pki.KeyOptions): KeyOutcome =>
  Effect.suspend(() => {
    const text = textOf(data)
    const fail = keyFailure(path)
    if (options.asn1) {
      if (isPemText(text)) return fail("Malformed", "this is PEM text; load it without { asn1: true }")
      if (typeof data === "string") return fail("Malformed", "DER keys must be given as bytes")
      return keyFromDer(data, path, options)
    }
    if (!isPemText(text)) return fail("Malformed", "no PEM block in it; for a DER key pass { asn1: true }")
    return keyFromPem(text, path, options)
  })

const keyMatches = (key: Pki.PrivateKey, certificate: Pki.Certificate): boolean => {
  try {
    return new Crypto.X509Certificate(certificate.der).checkPrivateKey(Crypto.createPrivateKey(key.pem))
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// PKCS#12

interface NativeContext {
  readonly getCertificate: () => Buffer | null | undefined
}

// node:crypto has no PKCS#12 reader; OpenSSL's PKCS12_parse runs behind createSecureContext, which
// checks the key against the certificate too (SSL_CTX_use_PrivateKey), and hands back the leaf but
// never the key. Its failures are told apart by Node's code and OpenSSL's reason text.
const pkcs12Failure = (path: string, passphrase: string | undefined, error: unknown) => {
  const cause = reasonOf(error)
  const key = (reason: SslError.PrivateKeyLoadReason) => new SslError.PrivateKeyLoadError({ path, reason, cause })
  if (/mac verify failure|mac absent/i.test(cause)) return key(passphrase === undefined ? "Encrypted" : "BadPassphrase")
  // "Unsupported PKCS12 PFX data": a cipher only OpenSSL's legacy provider has (RC2)
  if (codeOf(error) === "ERR_CRYPTO_UNSUPPORTED_OPERATION") return key("Unsupported")
  if (/key values mismatch/i.test(cause)) return key("KeyMismatch")
  if (/private key/i.test(cause)) return key("NoKey")
  if (/certificate/i.test(cause)) return new SslError.CertificateLoadError({ path, reason: "NoCertificate", cause })
  return key("Malformed")
}

const parsePkcs12 = (data: Uint8Array, path: string, passphrase: string | undefined) =>
  Effect.suspend(() => {
    let native: NativeContext
    try {
      native = (Tls.createSecureContext({
        pfx: bufferOf(data),
        ...(passphrase !== undefined ? { passphrase } : {})
      }) as unknown as { readonly context: NativeContext }).context
    } catch (error) {
      return Effect.fail(pkcs12Failure(path, passphrase, error))
    }
    const leaf = native.getCertificate()
    if (leaf == null) return certificateFailure(path)("NoCertificate")
    return Effect.succeed({
      chain: [certificateOf(new Crypto.X509Certificate(leaf))],
      pkcs12: { der: new Uint8Array(data), passphrase }
    })
  })

/**
 * What a secure context is built with for a context's identity: `cert` and `key` PEM, or the
 * PKCS#12 file (`pfx`, `passphrase`) it was loaded from.
 *
 * @internal
 */
export const identityOptions = (state: SslContextT.State): {
  readonly cert?: string
  readonly key?: string
  readonly pfx?: Buffer
  readonly passphrase?: string
} =>
  state.pkcs12 !== undefined
    ? {
      pfx: bufferOf(state.pkcs12.der),
      ...(state.pkcs12.passphrase !== undefined ? { passphrase: state.pkcs12.passphrase } : {})
    }
    : {
      ...(state.chain.length > 0 ? { cert: state.chain.map((c) => c.pem).join("\n") } : {}),
      ...(state.key !== undefined ? { key: state.key.pem } : {})
    }

// ---------------------------------------------------------------------------------------------
// Describing a certificate

const distinguishedName = (text: string): string =>
  text.split("\n").filter((line) => line.length > 0).map((line) => `/${line}`).join("")

/**
 * node:crypto gives the alt names as one string, `DNS:a, IP Address:127.0.0.1`, and writes a value
 * holding a comma or a quote as a JSON string (`DNS:"a, DNS:b"`) so that no name can pass for two:
 * this undoes exactly that.
 */
const altNames = (text: string | undefined): ReadonlyArray<string> => {
  const out: Array<string> = []
  let i = 0
  while (text !== undefined && i < text.length) {
    const colon = text.indexOf(":", i)
    if (colon < 0) break
    let value: string
    let next: number
    if (text[colon + 1] === "\"") {
      let j = colon + 2
      while (j < text.length && text[j] !== "\"") j += text[j] === "\\" ? 2 : 1
      next = j + 1
      try {
        value = JSON.parse(text.slice(colon + 1, next)) as string
      } catch {
        value = text.slice(colon + 1, next)
      }
    } else {
      const comma = text.indexOf(", ", colon)
      next = comma < 0 ? text.length : comma
      value = text.slice(colon + 1, next)
    }
    out.push(`${text.slice(i, colon)}:${value}`)
    i = next + 2
  }
  return out
}

const commonNames = (x509: Crypto.X509Certificate): ReadonlyArray<string> => {
  const cn = (x509.toLegacyObject().subject as Record<string, string | ReadonlyArray<string> | undefined> | undefined)
    ?.CN
  return cn === undefined ? [] : typeof cn === "string" ? [cn] : cn
}

/**
 * Whether a certificate is valid for a host name or IP address, as OpenSSL checks it
 * (`X509_check_host` / `X509_check_ip`), the one check of the handshake and `Ssl.checkHostname`.
 * Three things OpenSSL takes otherwise are set apart first: a name written absolute
 * ("example.com.") is the same name (as node:tls and curl take it); a name with a leading dot is,
 * to `X509_check_host`, a pattern for every name under it (its client-side sub-domain match), and
 * is no host name (node:tls matched it to nothing; CPython's ssl refuses it); an IPv6 address's
 * zone ("fe80::1%eth0") says which interface reaches it, the certificate names the address (as
 * node:tls and curl match it; OpenSSL cannot parse it).
 *
 * @internal
 */
export const certificateMatches = (x509: Crypto.X509Certificate, host: string): boolean => {
  if (host.startsWith(".")) return false
  try {
    const ip = Net.isIP(host)
    if (ip === 6 && host.includes("%")) return x509.checkIP(host.slice(0, host.indexOf("%"))) !== undefined
    if (ip !== 0) return x509.checkIP(host) !== undefined
    return x509.checkHost(host.length > 1 && host.endsWith(".") ? host.slice(0, -1) : host) !== undefined
  } catch {
    // a name OpenSSL refuses to check (empty, or with a NUL in it) matches nothing
    return false
  }
}

/**
 * A node:crypto certificate as `Ssl.PeerCertificate`, carrying OpenSSL's host-name check for
 * `Ssl.checkHostname` and `Ssl.peerHostnames`.
 *
 * @internal
 */
export const describeCertificate = (x509: Crypto.X509Certificate): Ssl.PeerCertificate => {
  const subjectAltNames = altNames(x509.subjectAltName)
  let hostnames: ReadonlyArray<string> | undefined
  return Pki.withHostCheck({
    subject: distinguishedName(x509.subject),
    issuer: distinguishedName(x509.issuer),
    validFrom: new Date(x509.validFrom),
    validTo: new Date(x509.validTo),
    fingerprint256: x509.fingerprint256,
    subjectAltNames,
    der: new Uint8Array(x509.raw),
    serialNumber: x509.serialNumber,
    spkiSha256: Crypto.createHash("sha256").update(x509.publicKey.export({ type: "spki", format: "der" })).digest(
      "base64"
    )
  }, {
    matches: (host) => certificateMatches(x509, host),
    // As OpenSSL checks them: the DNS alt names, or the common names when there are none.
    get hostnames() {
      if (hostnames === undefined) {
        const dns = subjectAltNames.filter((name) => name.startsWith("DNS:")).map((name) => name.slice(4))
        hostnames = dns.length > 0 ? dns : commonNames(x509)
      }
      return hostnames
    }
  })
}

/**
 * The `Pki` service on node:crypto.
 *
 * @internal
 */
export const pki: Pki.Service = {
  parseCertificates,
  parsePrivateKey,
  parsePkcs12,
  keyMatches,
  describe: (certificate) => describeCertificate(parsedCertificate(certificate.der))
}
