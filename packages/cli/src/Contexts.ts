/**
 * Building client and server contexts from command-line options.
 *
 * @since 0.1.0
 */
import { type Pki, SslContext, type SslError } from "@effect-ssl/core"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CliError } from "./Report.js"

/**
 * The passphrase `--passin` names, as `openssl -passin` takes it: `env:NAME` (an environment
 * variable), `file:PATH` (the file's first line) or `pass:TEXT` (the text itself, which other users
 * of the machine can see in the process list).
 *
 * @since 0.2.0
 * @category identity
 */
export const passphraseFrom = (
  passin: Option.Option<string>
): Effect.Effect<string | undefined, CliError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (Option.isNone(passin)) return undefined
    const source = passin.value
    const colon = source.indexOf(":")
    const kind = colon < 0 ? "" : source.slice(0, colon)
    const rest = source.slice(colon + 1)
    if (kind === "pass") return rest
    if (kind === "env" && rest !== "") {
      const value = yield* Effect.orElseSucceed(Config.option(Config.string(rest)), () => Option.none())
      if (Option.isNone(value)) {
        return yield* new CliError({ message: `--passin env:${rest}: the environment variable ${rest} is not set` })
      }
      return value.value
    }
    if (kind === "file" && rest !== "") {
      const fs = yield* FileSystem.FileSystem
      const text = yield* Effect.mapError(
        fs.readFileString(rest),
        (error) => new CliError({ message: `--passin file:${rest}: cannot read the file (${error.message})` })
      )
      // the first line without its "\n", as openssl reads it (a "\r" before it stays)
      return text.split("\n")[0]!
    }
    // (not echoed: a mistyped value may be the passphrase itself, as openssl also knows)
    return yield* new CliError({
      message: "--passin: expected env:NAME, file:PATH or pass:TEXT (the value is not shown)"
    })
  })

/**
 * Loads `--cert` and `--key` into a context. `--key` defaults to the `--cert` file (a PEM file
 * holding both); a key without a certificate is an error. An encrypted key needs `--passin` (see
 * `passphraseFrom`).
 *
 * @since 0.1.0
 * @category identity
 */
export const loadIdentity = (
  target: SslContext.SslContext,
  cert: Option.Option<string>,
  key: Option.Option<string>,
  passin: Option.Option<string> = Option.none()
): Effect.Effect<
  boolean,
  CliError | SslError.CertificateLoadError | SslError.PrivateKeyLoadError,
  FileSystem.FileSystem | Pki.Pki
> =>
  Effect.gen(function*() {
    if (Option.isNone(cert)) {
      if (Option.isSome(key)) {
        return yield* new CliError({ message: "--key needs --cert (the certificate chain it belongs to)" })
      }
      if (Option.isSome(passin)) {
        return yield* new CliError({ message: "--passin needs --cert (and the --key it unlocks)" })
      }
      return false
    }
    const passphrase = yield* passphraseFrom(passin)
    yield* SslContext.loadCertificateChain(target, cert.value)
    const keyFile = Option.getOrElse(key, () => cert.value)
    // (the library's own message tells a program to pass { passphrase }; a user of the command
    // gives it with --passin)
    yield* Effect.catchIf(
      SslContext.loadPrivateKey(target, keyFile, { rsa: false, passphrase }),
      (error) =>
        error._tag === "PrivateKeyLoadError" && (error.reason === "Encrypted" || error.reason === "BadPassphrase"),
      (error) =>
        new CliError({
          message: error.reason === "Encrypted"
            ? `Cannot load a private key from ${keyFile}: it is encrypted with a passphrase; ` +
              "give it with --passin (env:NAME, file:PATH or pass:TEXT)"
            : `Cannot load a private key from ${keyFile}: the passphrase --passin gave does not decrypt it` +
              // (OpenSSL's reason, "bad decrypt" for a wrong passphrase)
              (typeof error.cause === "string" && error.cause !== "" ? ` (${error.cause})` : "")
        })
    )
    return true
  })

/**
 * Adds every `--ca` file to the context's trusted roots.
 *
 * @since 0.1.0
 * @category verification
 */
export const loadRoots = (
  target: SslContext.SslContext,
  files: ReadonlyArray<string>
): Effect.Effect<void, SslError.CertificateLoadError, FileSystem.FileSystem | Pki.Pki> =>
  Effect.forEach(files, (file) => SslContext.loadVerifyRootCertificates(target, file), { discard: true })
