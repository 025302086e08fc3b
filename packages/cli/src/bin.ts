/**
 * The `effect-ssl` executable: wires the layers and runs the command tree. On failure it prints
 * one line on stderr and exits 1; Ctrl-C and SIGTERM interrupt it cleanly (exit 0).
 *
 * @since 0.1.0
 */
import { NodeSsl } from "@effect-ssl/node"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Cli from "./Cli.js"
import * as Report from "./Report.js"
import * as Stdio from "./Stdio.js"

const subcommand = process.argv[2]
const prefix = subcommand !== undefined && Cli.commandNames.includes(subcommand)
  ? `effect-ssl ${subcommand}`
  : "effect-ssl"

const main = Effect.suspend(() => Cli.run(process.argv)).pipe(
  Effect.provide(Layer.mergeAll(NodeContext.layer, NodeSsl.layer)),
  Effect.tapErrorCause((cause) =>
    Option.match(Report.outcome(cause).line, {
      onNone: () => Effect.void,
      onSome: (line) => Stdio.errorLine(`${prefix}: ${line}`)
    })
  )
)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  // Exit explicitly once the program is done, so nothing (a half-read stdin) can keep us alive.
  teardown: (exit, onExit) => {
    const code = Exit.isSuccess(exit) ? 0 : Report.outcome(exit.cause).code
    onExit(code)
    process.exit(code)
  }
})
