/**
 * Reading certificate and key files: which paths may be opened, how much of them is read, and
 * which typed error a file problem becomes. What the bytes hold is the platform's to read
 * (`Pki`): core parses nothing itself.
 *
 * @internal
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Pki from "../Pki.js"
import { CertificateLoadError, type FileReason, PrivateKeyLoadError } from "../SslError.js"

/** @internal */
export const memoryPath = "<memory>"

/** @internal */
export const isPemText = (s: string): boolean => s.includes("-----BEGIN")

/**
 * The largest file read (16 MiB): certificates and keys are kilobytes, a trust bundle a few
 * hundred.
 *
 * @internal
 */
export const maxFileSize = 16 * 1024 * 1024

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

const tooLarge = (size: bigint | number): FileProblem => ({
  reason: "TooLarge",
  cause: `${size} bytes; at most ${maxFileSize} are read`
})

// Everything is decided by stat, before the path is opened: open(2) on a FIFO waits for a writer
// in a libuv thread that no interruption reaches (four such loads take the whole pool, and then
// every file read and DNS lookup of the process waits), and a device such as /dev/zero never
// ends. A directory gets its own reason (reading one fails as "BadResource", which says nothing).
// What stays open: a path swapped for a FIFO between the stat and the open. @effect/platform's
// FileSystem has no O_NONBLOCK open flag to close that gap.
const readBytes = (path: string): Effect.Effect<Uint8Array, FileProblem, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* Effect.mapError(fs.stat(path), fileProblem)
    if (info.type === "Directory") return yield* Effect.fail<FileProblem>({ reason: "IsDirectory", cause: undefined })
    if (info.type !== "File") return yield* Effect.fail<FileProblem>({ reason: "NotRegularFile", cause: info.type })
    if (info.size > BigInt(maxFileSize)) return yield* Effect.fail(tooLarge(info.size))
    const bytes = yield* Effect.mapError(fs.readFile(path), fileProblem)
    // It may have grown since the stat.
    if (bytes.length > maxFileSize) return yield* Effect.fail(tooLarge(bytes.length))
    return bytes
  })

const isBlank = (data: string | Uint8Array): boolean => {
  if (typeof data === "string") return data.trim() === ""
  return data.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d)
}

const certificateError = (path: string) => ({ cause, reason }: FileProblem) =>
  new CertificateLoadError({ path, reason, cause })

const keyError = (path: string) => ({ cause, reason }: FileProblem) => new PrivateKeyLoadError({ path, reason, cause })

/** @internal */
export const parseCertificates = (
  data: string | Uint8Array,
  path: string
): Effect.Effect<ReadonlyArray<Pki.Certificate>, CertificateLoadError, Pki.Pki> =>
  isBlank(data)
    ? Effect.fail(new CertificateLoadError({ path, reason: "Empty" }))
    : Effect.flatMap(Pki.Pki, (pki) => pki.parseCertificates(data, path))

/** @internal */
export const readCertificates = (
  path: string
): Effect.Effect<ReadonlyArray<Pki.Certificate>, CertificateLoadError, FileSystem.FileSystem | Pki.Pki> =>
  Effect.flatMap(Effect.mapError(readBytes(path), certificateError(path)), (bytes) => parseCertificates(bytes, path))

// OpenSSL's hashed-directory layout: <8 hex digits of the subject hash>.<n>
const hashedName = /^[0-9a-f]{8}\.[0-9]+$/

/**
 * Every certificate in a hashed directory (`openssl rehash`), read now. A missing directory holds
 * nothing, as for OpenSSL's lazy lookup; a file that does not load is skipped.
 *
 * @internal
 */
export const readHashedDirectory = (
  directory: string
): Effect.Effect<ReadonlyArray<Pki.Certificate>, CertificateLoadError, FileSystem.FileSystem | Pki.Pki> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = yield* Effect.orElseSucceed(fs.readDirectory(directory), (): ReadonlyArray<string> => [])
    const chosen = names.filter((name) => hashedName.test(name)).sort()
    const certs = yield* Effect.forEach(chosen, (name) =>
      Effect.orElseSucceed(
        readCertificates(`${directory.replace(/\/+$/, "")}/${name}`),
        (): ReadonlyArray<Pki.Certificate> => []
      ))
    return certs.flat()
  })

/** @internal */
export const parsePrivateKey = (
  data: string | Uint8Array,
  path: string,
  options: Pki.KeyOptions
): Effect.Effect<Pki.PrivateKey, PrivateKeyLoadError, Pki.Pki> =>
  isBlank(data)
    ? Effect.fail(new PrivateKeyLoadError({ path, reason: "Empty" }))
    : Effect.flatMap(Pki.Pki, (pki) => pki.parsePrivateKey(data, path, options))

/** @internal */
export const readPrivateKey = (
  path: string,
  options: Pki.KeyOptions
): Effect.Effect<Pki.PrivateKey, PrivateKeyLoadError, FileSystem.FileSystem | Pki.Pki> =>
  Effect.flatMap(Effect.mapError(readBytes(path), keyError(path)), (bytes) => parsePrivateKey(bytes, path, options))

/** A path, PEM text or bytes. @internal */
export const certificatesFromSource = (
  source: string | Uint8Array
): Effect.Effect<ReadonlyArray<Pki.Certificate>, CertificateLoadError, FileSystem.FileSystem | Pki.Pki> =>
  typeof source === "string" && !isPemText(source) ? readCertificates(source) : parseCertificates(source, memoryPath)

/** @internal */
export const privateKeyFromSource = (
  source: string | Uint8Array,
  options: Pki.KeyOptions
): Effect.Effect<Pki.PrivateKey, PrivateKeyLoadError, FileSystem.FileSystem | Pki.Pki> =>
  typeof source === "string" && !isPemText(source)
    ? readPrivateKey(source, options)
    : parsePrivateKey(source, memoryPath, options)

/** A PKCS#12 file, read and checked by the platform. @internal */
export const readPkcs12 = (
  path: string,
  passphrase: string | undefined
): Effect.Effect<
  { readonly chain: ReadonlyArray<Pki.Certificate>; readonly pkcs12: Pki.Pkcs12 },
  CertificateLoadError | PrivateKeyLoadError,
  FileSystem.FileSystem | Pki.Pki
> =>
  Effect.flatMap(Effect.mapError(readBytes(path), keyError(path)), (bytes) =>
    bytes.length === 0
      ? Effect.fail(new PrivateKeyLoadError({ path, reason: "Empty" }))
      : Effect.flatMap(Pki.Pki, (pki) => pki.parsePkcs12(bytes, path, passphrase)))
