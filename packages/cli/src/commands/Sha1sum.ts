/**
 * `effect-ssl sha1 [FILE…]`: SHA-1 of files or standard input, printed byte for byte like
 * `sha1sum`.
 *
 * @since 0.1.0
 */
import { Sha1 } from "@effect-ssl/sha1"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import { type CliError, ExitCode } from "../Report.js"
import * as Stdio from "../Stdio.js"

/**
 * One output line as `sha1sum` prints it: `<hex>  <name>\n`, and for a name holding a backslash,
 * newline or carriage return, the name escaped and the line prefixed with a backslash.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatLine = (hex: string, name: string): string => {
  if (!/[\\\n\r]/.test(name)) return `${hex}  ${name}\n`
  const escaped = name.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r")
  return `\\${hex}  ${escaped}\n`
}

const codeOf = (u: unknown): string | undefined =>
  Predicate.hasProperty(u, "code") && typeof u.code === "string" ? u.code : undefined

/**
 * The reason `sha1sum` would print for a file that cannot be read.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describeError = (error: PlatformError.PlatformError | CliError): string => {
  if (error._tag === "SystemError") {
    const code = codeOf(error.cause)
    if (code === "EISDIR") return "Is a directory"
    if (error.reason === "NotFound") return "No such file or directory"
    if (error.reason === "PermissionDenied") return "Permission denied"
    if (error.reason === "BadResource" && code === undefined) return "Is a directory"
  }
  return error.message
}

/**
 * Hashes each file (`-` or no file: standard input) and prints its line; a file that cannot be
 * read is reported on stderr and the others still are hashed; exit code 1 if any failed.
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (files: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    let failed = false
    let stdinRead = false
    for (const name of files.length === 0 ? ["-"] : files) {
      let input: Stream.Stream<Uint8Array, PlatformError.PlatformError | CliError>
      if (name === "-") {
        // Like sha1sum, a second "-" finds standard input already at its end.
        input = stdinRead ? Stream.empty : Stdio.stdin
        stdinRead = true
      } else {
        input = fs.stream(name)
      }
      const digest = yield* Effect.either(Sha1.sha1(input))
      if (Either.isLeft(digest)) {
        failed = true
        yield* Stdio.errorLine(`effect-ssl sha1: ${name}: ${describeError(digest.left)}`)
      } else {
        yield* Stdio.writeStdout(formatLine(digest.right, name))
      }
    }
    if (failed) return yield* new ExitCode({ code: 1 })
  })

/**
 * The `sha1` command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "sha1",
  { files: Args.text({ name: "FILE" }).pipe(Args.repeated) },
  ({ files }) => run(files)
).pipe(
  Command.withDescription("print SHA-1 digests like sha1sum (standard input when no FILE, or for -)")
)
