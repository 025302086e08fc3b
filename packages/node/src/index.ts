/**
 * @since 0.1.0
 */
export * as NodeSsl from "./NodeSsl.js"
