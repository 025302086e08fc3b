/**
 * The `effect-ssl` command, for programs that want to run it in-process.
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"
