/**
 * The process's standard streams as Effects: stdout with backpressure, one-line messages on
 * stderr, stdin as a stream.
 *
 * @since 0.1.0
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import { CliError } from "./Report.js"

/**
 * Writes to stdout, waiting until Node has handed the bytes on (so a slow reader slows us down
 * instead of filling memory).
 *
 * @since 0.1.0
 * @category stdout
 */
export const writeStdout = (data: Uint8Array | string): Effect.Effect<void, CliError> =>
  Effect.async<void, CliError>((resume) => {
    process.stdout.write(data, (error) => {
      resume(
        error
          ? Effect.fail(new CliError({ message: `cannot write to standard output: ${error.message}` }))
          : Effect.void
      )
    })
  })

/**
 * Prints one line on stderr.
 *
 * @since 0.1.0
 * @category stderr
 */
export const errorLine = (line: string): Effect.Effect<void> =>
  Effect.sync(() => {
    process.stderr.write(`${line}\n`)
  })

/**
 * Writes text on stderr as it is (for progress bars redrawn with "\r").
 *
 * @since 0.1.0
 * @category stderr
 */
export const errorText = (text: string): Effect.Effect<void> =>
  Effect.sync(() => {
    process.stderr.write(text)
  })

/**
 * Whether stderr is a terminal (progress bars are drawn only then).
 *
 * @since 0.1.0
 * @category stderr
 */
export const stderrIsTty = (): boolean => process.stderr.isTTY === true

/**
 * Standard input as a stream of byte chunks; it is released (destroyed) when the stream ends or
 * is interrupted, so a pending read cannot keep the process alive.
 *
 * @since 0.1.0
 * @category stdin
 */
export const stdin: Stream.Stream<Uint8Array, CliError> = NodeStream.fromReadable<CliError, Uint8Array>(
  () => process.stdin,
  (error) =>
    new CliError({
      message: `cannot read standard input: ${error instanceof Error ? error.message : String(error)}`
    })
)
