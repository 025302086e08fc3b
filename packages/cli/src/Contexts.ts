/**
 * Building client and server contexts from command-line options.
 *
 * @since 0.1.0
 */
import { type Pki, SslContext, type SslError } from "@effect-ssl/core"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CliError } from "./Report.js"

/**
 * Loads `--cert` and `--key` into a context. `--key` defaults to the `--cert` file (a PEM file
 * holding both); a key without a certificate is an error.
 *
 * @since 0.1.0
 * @category identity
 */
export const loadIdentity = (
  target: SslContext.SslContext,
  cert: Option.Option<string>,
  key: Option.Option<string>
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
      return false
    }
    yield* SslContext.loadCertificateChain(target, cert.value)
    yield* SslContext.loadPrivateKey(target, Option.getOrElse(key, () => cert.value), { rsa: false })
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
