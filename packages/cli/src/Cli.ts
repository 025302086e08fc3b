/**
 * The `effect-ssl` command tree: demo, connect, serve, sha1.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Connect from "./commands/Connect.js"
import * as Demo from "./commands/Demo.js"
import * as Serve from "./commands/Serve.js"
import * as Sha1sum from "./commands/Sha1sum.js"
import { CliError } from "./Report.js"

/**
 * The names of the subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const commandNames: ReadonlyArray<string> = ["demo", "connect", "serve", "sha1"]

/**
 * The whole command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "effect-ssl",
  {},
  () => Effect.fail(new CliError({ message: `choose a command: ${commandNames.join(", ")} (see effect-ssl --help)` }))
).pipe(
  Command.withDescription("TLS clients, servers and SHA-1 from the command line, built on effect-ssl"),
  Command.withSubcommands([Demo.command, Connect.command, Serve.command, Sha1sum.command])
)

/**
 * Runs the command on `process.argv`-style arguments (the first two are skipped).
 *
 * @since 0.1.0
 * @category commands
 */
export const run = Command.run(command, { name: "effect-ssl", version: "0.1.0" })
