/**
 * What the command prints: session summaries, sizes, rates, progress, and the one-line reason
 * a failure is reported with.
 *
 * @since 0.1.0
 */
import type { Ssl } from "@effect-ssl/core"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"

/**
 * A failure of the command itself (bad option combination, stdout closed…), with the message
 * printed for it.
 *
 * @since 0.1.0
 * @category errors
 */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string }> {}

/**
 * Ends the command with this exit code and nothing more printed (the command has already said
 * what went wrong, like `sha1` after a missing file).
 *
 * @since 0.1.0
 * @category errors
 */
export class ExitCode extends Data.TaggedError("ExitCode")<{ readonly code: number }> {}

const messageOf = (error: unknown): string => {
  if (Predicate.hasProperty(error, "message") && typeof error.message === "string" && error.message !== "") {
    return error.message
  }
  if (Predicate.hasProperty(error, "_tag") && typeof error._tag === "string") return error._tag
  return String(error)
}

/**
 * How a failed run ends: the line to print on stderr (none when it was printed already) and the
 * exit code. Interruption (Ctrl-C, SIGTERM) is a clean end.
 *
 * @since 0.1.0
 * @category failures
 */
export const outcome = (
  cause: Cause.Cause<unknown>
): { readonly line: Option.Option<string>; readonly code: number } => {
  if (Cause.isInterruptedOnly(cause)) return { line: Option.none(), code: 0 }
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof ExitCode) return { line: Option.none(), code: error.code }
    // @effect/cli has printed the usage error itself.
    if (ValidationError.isValidationError(error)) return { line: Option.none(), code: 1 }
    return { line: Option.some(oneLine(messageOf(error))), code: 1 }
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) {
    return { line: Option.some(oneLine(`internal error: ${messageOf(defect.value)}`)), code: 1 }
  }
  return { line: Option.some("failed"), code: 1 }
}

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, " ").trim()

/**
 * `host:port`, with brackets around IPv6 addresses.
 *
 * @since 0.1.0
 * @category formatting
 */
export const address = (address: Ssl.Address): string =>
  address.hostname.includes(":") ? `[${address.hostname}]:${address.port}` : `${address.hostname}:${address.port}`

/**
 * A byte count in MiB, one decimal.
 *
 * @since 0.1.0
 * @category formatting
 */
export const mebibytes = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`

/**
 * A rate in MiB/s.
 *
 * @since 0.1.0
 * @category formatting
 */
export const rate = (bytes: number, millis: number): string =>
  `${(bytes / 1048576 / Math.max(millis, 1) * 1000).toFixed(1)} MiB/s`

/**
 * Seconds, two decimals.
 *
 * @since 0.1.0
 * @category formatting
 */
export const seconds = (millis: number): string => `${(millis / 1000).toFixed(2)} s`

const date = (d: Date): string => d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC")

/**
 * The lines describing a TLS session, `key: value`, indented by two spaces.
 *
 * @since 0.1.0
 * @category formatting
 */
export const sessionLines = (session: Ssl.SessionInfo): ReadonlyArray<string> => {
  const lines = [
    `protocol: ${session.protocol}`,
    `cipher: ${session.cipher}`
  ]
  if (Option.isSome(session.alpnProtocol)) lines.push(`alpn: ${session.alpnProtocol.value}`)
  if (Option.isSome(session.servername)) lines.push(`server name: ${session.servername.value}`)
  Option.match(session.peerCertificate, {
    onNone: () => lines.push("peer certificate: none"),
    onSome: (cert) => {
      lines.push(
        `subject: ${cert.subject}`,
        `issuer: ${cert.issuer}`,
        `valid: ${date(cert.validFrom)} to ${date(cert.validTo)}`
      )
      if (cert.subjectAltNames.length > 0) {
        const shown = cert.subjectAltNames.slice(0, 8).join(", ")
        const more = cert.subjectAltNames.length > 8 ? `, … (${cert.subjectAltNames.length} in all)` : ""
        lines.push(`alt names: ${shown}${more}`)
      }
      lines.push(`fingerprint (SHA-256): ${cert.fingerprint256}`)
    }
  })
  lines.push(`verified: ${session.verified ? "yes" : "no"}`)
  return lines.map((line) => `  ${line}`)
}

/**
 * A progress bar: `[#####.....]  42%  53.8 of 128.0 MiB`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const progressBar = (done: number, total: number, width = 32): string => {
  const fraction = total === 0 ? 1 : Math.min(done / total, 1)
  const filled = Math.round(fraction * width)
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4)
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${percent}  ${mebibytes(done)} of ${mebibytes(total)}`
}
