/**
 * Reading and parsing certificates and private keys (PEM and DER) without any platform crypto:
 * core must run where there is no node:crypto, so keys are matched to certificates by comparing
 * the public key each one carries rather than by a signature check.
 *
 * @internal
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import {
  CertificateLoadError,
  type CertificateLoadReason,
  type FileReason,
  PrivateKeyLoadError,
  type PrivateKeyLoadReason
} from "../SslError.js"
import * as Der from "./der.js"
import * as Pem from "./pem.js"

/** @internal */
export const memoryPath = "<memory>"

/** @internal */
export interface LoadedCertificate {
  /** the certificate alone, as a PEM block */
  readonly pem: string
  /** its DER encoding */
  readonly der: Uint8Array
  /** a canonical text of the public key it certifies, comparable with LoadedKey.publicKey */
  readonly publicKey: string
}

/** @internal */
export interface LoadedKey {
  /** the key as PEM text that OpenSSL/Node accept (DER input converted) */
  readonly pem: string
  readonly type: "rsa" | "rsa-pss" | "ec" | "ed25519" | "ed448" | "dsa" | "other"
  /** a canonical text of its public key, or undefined where it cannot be derived without crypto */
  readonly publicKey: string | undefined
}

/** @internal */
export const isPemText = (s: string): boolean => s.includes("-----BEGIN")

// --- results ------------------------------------------------------------------------------------

interface Problem<R> {
  readonly reason: R
  readonly detail?: string | undefined
}

type Outcome<A, R> = Either.Either<A, Problem<R>>

const problem = <R extends string>(reason: R, detail?: string): Either.Either<never, Problem<R>> => Either.left({ reason, detail })

// Deep parsing throws DerError; this is the one place it becomes a "Malformed" outcome.
const guard = <A, R extends string = never>(where: string, f: () => Outcome<A, R>): Outcome<A, R | "Malformed"> => {
  try {
    return f()
  } catch (error) {
    if (error instanceof Der.DerError) return problem("Malformed", where === "" ? error.message : `${where}: ${error.message}`)
    throw error
  }
}

// --- algorithms and canonical public keys --------------------------------------------------------

const Oid = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsassaPss: "1.2.840.113549.1.1.10",
  ecPublicKey: "1.2.840.10045.2.1",
  dsa: "1.2.840.10040.4.1",
  x25519: "1.3.101.110",
  x448: "1.3.101.111",
  ed25519: "1.3.101.112",
  ed448: "1.3.101.113"
} as const

const rawKeyNames: Record<string, string> = {
  [Oid.x25519]: "x25519",
  [Oid.x448]: "x448",
  [Oid.ed25519]: "ed25519",
  [Oid.ed448]: "ed448"
}

// Both encodings of an RSA key (rsaEncryption and RSA-PSS) carry the same (n, e): a PSS
// certificate and a plain RSA key with that modulus do belong together.
const rsaText = (n: bigint, e: bigint): string => `rsa:${n.toString(16)}:${e.toString(16)}`

const rsaPublicText = (rsaPublicKey: Uint8Array): string => {
  const [n, e] = Der.sequence(Der.decode(rsaPublicKey), "RSAPublicKey")
  return rsaText(Der.integer(n, "modulus"), Der.integer(e, "public exponent"))
}

// The curve a key is on: its named-curve OID, or (rare) the explicit parameters' bytes.
const curveOf = (parameters: Der.Element | undefined): string | undefined => {
  if (parameters === undefined || parameters.tag === Der.Tag.Null) return undefined
  if (parameters.tag === Der.Tag.ObjectIdentifier) return Der.oid(parameters)
  return `explicit-${Der.hex(parameters.bytes)}`
}

// A point may be written uncompressed by one tool and compressed by another; the compressed
// form (x plus the parity of y) identifies it equally well and needs no curve arithmetic.
const ecText = (curve: string, point: Uint8Array): string => {
  const form = point[0]
  if ((form === 2 || form === 3) && point.length > 1) return `ec:${curve}:${Der.hex(point)}`
  if ((form === 4 || form === 6 || form === 7) && point.length > 1 && point.length % 2 === 1) {
    const size = (point.length - 1) / 2
    const compressed = new Uint8Array(size + 1)
    compressed[0] = 2 | (point[point.length - 1]! & 1)
    compressed.set(point.subarray(1, 1 + size), 1)
    return `ec:${curve}:${Der.hex(compressed)}`
  }
  throw new Der.DerError("invalid elliptic-curve point")
}

const dsaText = (y: bigint): string => `dsa:${y.toString(16)}`

const modPow = (base: bigint, exponent: bigint, modulus: bigint): bigint => {
  let result = 1n
  let b = base % modulus
  let e = exponent
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus
    b = (b * b) % modulus
    e >>= 1n
  }
  return result
}

/** The canonical public-key text of a SubjectPublicKeyInfo. */
const spkiText = (spki: Der.Element): string => {
  const [algorithm, subjectPublicKey] = Der.sequence(spki, "SubjectPublicKeyInfo")
  const [oidElement, parameters] = Der.sequence(algorithm, "AlgorithmIdentifier")
  const oid = Der.oid(Der.expect(oidElement, Der.Tag.ObjectIdentifier, "algorithm OID"))
  const bits = Der.bitString(subjectPublicKey, "subjectPublicKey")
  switch (oid) {
    case Oid.rsaEncryption:
    case Oid.rsassaPss:
      return rsaPublicText(bits)
    case Oid.ecPublicKey: {
      const curve = curveOf(parameters)
      if (curve === undefined) throw new Der.DerError("EC public key without curve parameters")
      return ecText(curve, bits)
    }
    case Oid.dsa:
      return dsaText(Der.integer(Der.decode(bits), "DSA public key"))
    default: {
      const name = rawKeyNames[oid]
      return `${name ?? oid}:${Der.hex(bits)}`
    }
  }
}

// --- certificates -------------------------------------------------------------------------------

const certificateLabels = new Set(["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"])

/** Walks Certificate → TBSCertificate → SubjectPublicKeyInfo, checking each field's type on the way. */
const certificateFromDer = (der: Uint8Array): LoadedCertificate => {
  const [tbs, signatureAlgorithm, signature] = Der.sequence(Der.decode(der), "Certificate")
  Der.expect(signatureAlgorithm, Der.Tag.Sequence, "signatureAlgorithm")
  Der.expect(signature, Der.Tag.BitString, "signatureValue")
  const fields = Der.sequence(tbs, "TBSCertificate")
  let i = fields[0]?.tag === Der.contextTag(0, true) ? 1 : 0
  Der.expect(fields[i++], Der.Tag.Integer, "serialNumber")
  Der.expect(fields[i++], Der.Tag.Sequence, "signature")
  Der.expect(fields[i++], Der.Tag.Sequence, "issuer")
  Der.expect(fields[i++], Der.Tag.Sequence, "validity")
  Der.expect(fields[i++], Der.Tag.Sequence, "subject")
  const publicKey = spkiText(Der.expect(fields[i], Der.Tag.Sequence, "subjectPublicKeyInfo"))
  // A copy, so that a certificate does not keep the whole file it came from alive.
  const own = der.slice()
  return { pem: Pem.encode("CERTIFICATE", own), der: own, publicKey }
}

const isBlank = (data: string | Uint8Array): boolean => {
  if (typeof data === "string") return data.trim() === ""
  return data.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d)
}

// Bytes are PEM when their text has a BEGIN line; otherwise they may be DER.
const asText = (data: string | Uint8Array): string => (typeof data === "string" ? data : new TextDecoder().decode(data))

const labelsIn = (blocks: ReadonlyArray<Pem.Block>): string =>
  blocks.length === 0 ? "" : `found ${[...new Set(blocks.map((block) => block.label))].join(", ")}`

const where = (index: number, block: Pem.Block) => `${block.label} block ${index + 1}`

const certificates = (
  data: string | Uint8Array
): Outcome<ReadonlyArray<LoadedCertificate>, Exclude<CertificateLoadReason, FileReason> | "Empty"> => {
  if (isBlank(data)) return problem("Empty")
  const text = asText(data)
  if (!isPemText(text)) {
    if (typeof data !== "string" && data[0] === Der.Tag.Sequence) {
      return guard("DER data that is not an X.509 certificate", () => Either.right([certificateFromDer(data)]))
    }
    return problem("Malformed", "no PEM block in it")
  }
  const blocks = Pem.parse(text)
  if (blocks.length === 0) return problem("Malformed", "no complete PEM BEGIN line in it")
  const out: Array<LoadedCertificate> = []
  for (const [index, block] of blocks.entries()) {
    if (!certificateLabels.has(block.label)) continue
    const at = where(index, block)
    if (!block.terminated) return problem("Malformed", `${at} has no END line: the file looks truncated`)
    const der = block.der
    if (der === undefined) return problem("Malformed", `${at} is not valid base64`)
    const parsed = guard(at, () =>
      Either.right(certificateFromDer(
        // OpenSSL's TRUSTED CERTIFICATE is the certificate followed by its trust settings.
        block.label === "TRUSTED CERTIFICATE" ? Der.decodePrefix(der).bytes : der
      )))
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    out.push(parsed.right)
  }
  if (out.length === 0) return problem("NoCertificate", labelsIn(blocks))
  return Either.right(out)
}

// --- private keys -------------------------------------------------------------------------------

type KeyType = LoadedKey["type"]

interface ParsedKey {
  readonly type: KeyType
  readonly publicKey: string | undefined
  /** the PEM label OpenSSL expects for this DER structure */
  readonly label: string
  readonly der: Uint8Array
}

const isRsa = (type: KeyType): boolean => type === "rsa" || type === "rsa-pss"

/** PKCS#1 RSAPrivateKey: version, n, e, d, p, q, dp, dq, qinv (and other primes in version 1). */
const pkcs1 = (der: Uint8Array): ParsedKey => {
  const fields = Der.sequence(Der.decode(der), "RSAPrivateKey")
  if (fields.length < 9) throw new Der.DerError("RSAPrivateKey has too few fields")
  for (let i = 0; i < 9; i++) Der.expect(fields[i], Der.Tag.Integer, "an RSAPrivateKey INTEGER")
  const publicKey = rsaText(Der.integer(fields[1], "modulus"), Der.integer(fields[2], "public exponent"))
  return { type: "rsa", publicKey, label: "RSA PRIVATE KEY", der }
}

/**
 * SEC1 ECPrivateKey: version 1, the private scalar, [0] curve, [1] public point. The curve may
 * come from outside (PKCS#8 puts it in the algorithm identifier instead).
 */
const sec1 = (der: Uint8Array, outerCurve?: string): ParsedKey => {
  const fields = Der.sequence(Der.decode(der), "ECPrivateKey")
  if (Der.integer(fields[0], "ECPrivateKey version") !== 1n) throw new Der.DerError("ECPrivateKey version is not 1")
  Der.expect(fields[1], Der.Tag.OctetString, "EC private key")
  let curve = outerCurve
  let point: Uint8Array | undefined
  for (const field of fields.slice(2)) {
    if (field.tag === Der.contextTag(0, true)) curve ??= curveOf(Der.children(field)[0])
    else if (field.tag === Der.contextTag(1, true)) point = Der.bitString(Der.children(field)[0], "EC public key")
  }
  // Without the public point it could only be computed with curve arithmetic: leave it unknown.
  const publicKey = curve !== undefined && point !== undefined ? ecText(curve, point) : undefined
  return { type: "ec", publicKey, label: "EC PRIVATE KEY", der }
}

/** OpenSSL's traditional DSA key: version 0, p, q, g, y, x. */
const legacyDsa = (der: Uint8Array): ParsedKey => {
  const fields = Der.sequence(Der.decode(der), "DSAPrivateKey")
  if (fields.length !== 6) throw new Der.DerError("DSAPrivateKey must have six fields")
  return { type: "dsa", publicKey: dsaText(Der.integer(fields[4], "DSA public key")), label: "DSA PRIVATE KEY", der }
}

/** PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 5958): version, algorithm, key, [0] attributes, [1] public key. */
const pkcs8 = (der: Uint8Array): ParsedKey => {
  const fields = Der.sequence(Der.decode(der), "PrivateKeyInfo")
  const version = Der.integer(fields[0], "PrivateKeyInfo version")
  if (version > 1n) throw new Der.DerError(`unknown PrivateKeyInfo version ${version}`)
  const [oidElement, parameters] = Der.sequence(fields[1], "privateKeyAlgorithm")
  const oid = Der.oid(Der.expect(oidElement, Der.Tag.ObjectIdentifier, "algorithm OID"))
  const inner = Der.expect(fields[2], Der.Tag.OctetString, "privateKey").content
  const attached = fields.slice(3).find((field) => field.tag === Der.contextTag(1, false))
  const attachedKey = attached === undefined ? undefined : Der.bitString(attached, "publicKey", attached.tag)
  const key = (type: KeyType, publicKey: string | undefined): ParsedKey => ({ type, publicKey, label: "PRIVATE KEY", der })
  switch (oid) {
    case Oid.rsaEncryption:
      return key("rsa", pkcs1(inner).publicKey)
    case Oid.rsassaPss:
      return key("rsa-pss", pkcs1(inner).publicKey)
    case Oid.ecPublicKey: {
      const curve = curveOf(parameters)
      const fromSec1 = sec1(inner, curve).publicKey
      return key("ec", fromSec1 ?? (curve !== undefined && attachedKey !== undefined ? ecText(curve, attachedKey) : undefined))
    }
    case Oid.dsa: {
      // y = g^x mod p: plain modular arithmetic, so DSA keys can be matched without crypto.
      const [p, , g] = Der.sequence(parameters, "DSA parameters")
      const x = Der.integer(Der.decode(inner), "DSA private key")
      return key("dsa", dsaText(modPow(Der.integer(g, "g"), x, Der.integer(p, "p"))))
    }
    default: {
      const name = rawKeyNames[oid]
      if (name !== undefined) Der.expect(Der.decode(inner), Der.Tag.OctetString, `${name} private key`)
      // Ed25519 and friends: the public key is a hash-and-multiply away, so only a v2 key that
      // carries it can be matched; otherwise it stays unknown and is taken as matching.
      const publicKey = attachedKey === undefined ? undefined : `${name ?? oid}:${Der.hex(attachedKey)}`
      const type: KeyType = oid === Oid.ed25519 ? "ed25519" : oid === Oid.ed448 ? "ed448" : "other"
      return key(type, publicKey)
    }
  }
}

const pemParsers: Record<string, (der: Uint8Array) => ParsedKey> = {
  "PRIVATE KEY": pkcs8,
  "RSA PRIVATE KEY": pkcs1,
  "EC PRIVATE KEY": (der) => sec1(der),
  "DSA PRIVATE KEY": legacyDsa
}

// What a legacy-encrypted block holds can be read from its label, so `rsa: true` can skip it.
const typeByLabel: Record<string, KeyType> = { "RSA PRIVATE KEY": "rsa", "EC PRIVATE KEY": "ec", "DSA PRIVATE KEY": "dsa" }

const toLoaded = (key: ParsedKey): LoadedKey => ({
  pem: Pem.encode(key.label, key.der.slice()),
  type: key.type,
  publicKey: key.publicKey
})

type KeyProblem = Exclude<PrivateKeyLoadReason, FileReason | "KeyMismatch" | "Sealed"> | "Empty"

const keyFromPem = (text: string, rsa: boolean): Outcome<LoadedKey, KeyProblem> => {
  const blocks = Pem.parse(text)
  if (blocks.length === 0) return problem("Malformed", "no complete PEM BEGIN line in it")
  let skipped = 0
  for (const [index, block] of blocks.entries()) {
    if (!block.label.endsWith("PRIVATE KEY")) continue
    const at = where(index, block)
    if (!block.terminated) return problem("Malformed", `${at} has no END line: the file looks truncated`)
    if (Pem.isEncrypted(block)) {
      const known = typeByLabel[block.label]
      if (rsa && known !== undefined && !isRsa(known)) {
        skipped++
        continue
      }
      return problem("Encrypted", at)
    }
    const parser = pemParsers[block.label]
    if (parser === undefined) return problem("Malformed", `${at}: a key format OpenSSL does not read`)
    const der = block.der
    if (der === undefined) return problem("Malformed", `${at} is not valid base64`)
    const parsed = guard(at, () => Either.right(parser(der)))
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    if (rsa && !isRsa(parsed.right.type)) {
      skipped++
      continue
    }
    return Either.right(toLoaded(parsed.right))
  }
  return skipped > 0
    ? problem("NoRsaKey", `skipped ${skipped} key${skipped === 1 ? "" : "s"} of another type`)
    : problem("NoKey", labelsIn(blocks))
}

/** Tells the DER structures apart by their shape, as OpenSSL's decoders would by trying each. */
const keyFromDer = (der: Uint8Array, rsa: boolean): Outcome<LoadedKey, KeyProblem> =>
  guard("", () => {
    const fields = Der.sequence(Der.decode(der), "a private key")
    const tags = fields.map((field) => field.tag)
    const { BitString, Integer, OctetString, Sequence } = Der.Tag
    let parsed: ParsedKey
    if (tags.length === 2 && tags[0] === Sequence && tags[1] === OctetString) {
      return problem("Encrypted", "an EncryptedPrivateKeyInfo")
    } else if (tags[0] === Integer && tags[1] === Sequence && tags[2] === OctetString) {
      parsed = pkcs8(der)
    } else if (tags[0] === Integer && tags[1] === OctetString) {
      parsed = sec1(der)
    } else if (tags.length >= 9 && tags.slice(0, 9).every((tag) => tag === Integer)) {
      parsed = pkcs1(der)
    } else if (tags.length === 6 && tags.every((tag) => tag === Integer)) {
      parsed = legacyDsa(der)
    } else if (tags.length === 3 && tags[0] === Sequence && tags[1] === Sequence && tags[2] === BitString) {
      return problem("NoKey", "this is an X.509 certificate")
    } else {
      return problem("Malformed", "not a PKCS#1, PKCS#8 or SEC1 private key")
    }
    if (rsa && !isRsa(parsed.type)) return problem("NoRsaKey", `the key is ${parsed.type.toUpperCase()}`)
    return Either.right(toLoaded(parsed))
  })

const privateKey = (
  data: string | Uint8Array,
  options: { readonly rsa: boolean; readonly asn1: boolean }
): Outcome<LoadedKey, KeyProblem> => {
  if (isBlank(data)) return problem("Empty")
  const text = asText(data)
  if (options.asn1) {
    if (isPemText(text)) return problem("Malformed", "this is PEM text; load it without { asn1: true }")
    if (typeof data === "string") return problem("Malformed", "DER keys must be given as bytes")
    return keyFromDer(data, options.rsa)
  }
  if (!isPemText(text)) return problem("Malformed", "no PEM block in it; for a DER key pass { asn1: true }")
  return keyFromPem(text, options.rsa)
}

// --- effects ------------------------------------------------------------------------------------

interface FileProblem {
  readonly reason: FileReason
  readonly cause: unknown
}

const fileProblem = (error: PlatformError): FileProblem => ({
  reason: error._tag === "SystemError" && (error.reason === "NotFound" || error.reason === "PermissionDenied")
    ? error.reason
    : "ReadFailed",
  cause: error
})

// stat first: reading a directory fails with a reason ("BadResource") that says nothing useful.
const readBytes = (path: string): Effect.Effect<Uint8Array, FileProblem, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* Effect.mapError(fs.stat(path), fileProblem)
    if (info.type === "Directory") return yield* Effect.fail<FileProblem>({ reason: "IsDirectory", cause: undefined })
    return yield* Effect.mapError(fs.readFile(path), fileProblem)
  })

/** @internal */
export const parseCertificates = (
  data: string | Uint8Array,
  path: string
): Effect.Effect<ReadonlyArray<LoadedCertificate>, CertificateLoadError> =>
  Effect.mapError(
    Effect.suspend(() => certificates(data)),
    ({ detail, reason }) => new CertificateLoadError({ path, reason, cause: detail })
  )

/** @internal */
export const readCertificates = (
  path: string
): Effect.Effect<ReadonlyArray<LoadedCertificate>, CertificateLoadError, FileSystem.FileSystem> =>
  Effect.flatMap(
    Effect.mapError(readBytes(path), ({ cause, reason }) => new CertificateLoadError({ path, reason, cause })),
    (bytes) => parseCertificates(bytes, path)
  )

// OpenSSL's hashed-directory layout: <8 hex digits of the subject hash>.<n>
const hashedName = /^[0-9a-f]{8}\.[0-9]+$/

/**
 * Every certificate in a hashed directory (`openssl rehash`), read now. A missing directory holds
 * nothing, as for OpenSSL's lazy lookup; a file that does not parse is skipped.
 *
 * @internal
 */
export const readHashedDirectory = (
  directory: string
): Effect.Effect<ReadonlyArray<LoadedCertificate>, CertificateLoadError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = yield* Effect.orElseSucceed(fs.readDirectory(directory), (): ReadonlyArray<string> => [])
    const chosen = names.filter((name) => hashedName.test(name)).sort()
    const certs = yield* Effect.forEach(chosen, (name) =>
      Effect.orElseSucceed(readCertificates(`${directory.replace(/\/+$/, "")}/${name}`), (): ReadonlyArray<LoadedCertificate> => []))
    return certs.flat()
  })

/** @internal */
export const parsePrivateKey = (
  data: string | Uint8Array,
  path: string,
  options: { readonly rsa: boolean; readonly asn1: boolean }
): Effect.Effect<LoadedKey, PrivateKeyLoadError> =>
  Effect.mapError(
    Effect.suspend(() => privateKey(data, options)),
    ({ detail, reason }) => new PrivateKeyLoadError({ path, reason, cause: detail })
  )

/** @internal */
export const readPrivateKey = (
  path: string,
  options: { readonly rsa: boolean; readonly asn1: boolean }
): Effect.Effect<LoadedKey, PrivateKeyLoadError, FileSystem.FileSystem> =>
  Effect.flatMap(
    Effect.mapError(readBytes(path), ({ cause, reason }) => new PrivateKeyLoadError({ path, reason, cause })),
    (bytes) => parsePrivateKey(bytes, path, options)
  )

/** A path, PEM text or bytes. @internal */
export const certificatesFromSource = (
  source: string | Uint8Array
): Effect.Effect<ReadonlyArray<LoadedCertificate>, CertificateLoadError, FileSystem.FileSystem> =>
  typeof source === "string" && !isPemText(source) ? readCertificates(source) : parseCertificates(source, memoryPath)

/** @internal */
export const privateKeyFromSource = (
  source: string | Uint8Array,
  options: { readonly rsa: boolean; readonly asn1: boolean }
): Effect.Effect<LoadedKey, PrivateKeyLoadError, FileSystem.FileSystem> =>
  typeof source === "string" && !isPemText(source)
    ? readPrivateKey(source, options)
    : parsePrivateKey(source, memoryPath, options)

/** True unless both public keys are known and differ. @internal */
export const keyMatches = (key: LoadedKey, certificate: LoadedCertificate): boolean =>
  key.publicKey === undefined || key.publicKey === certificate.publicKey
