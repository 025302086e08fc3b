/**
 * @since 0.1.0
 */

/**
 * Streaming SHA-1: `Sha1.sha1`, `Sha1.sha1Bytes`, hex conversions, and the choice between the
 * native (node:crypto) and portable (pure TypeScript) implementations.
 *
 * @since 0.1.0
 */
export * as Sha1 from "./Sha1.js"
