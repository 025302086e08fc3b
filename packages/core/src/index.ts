/**
 * @since 0.1.0
 */

/**
 * Ports: the input and output sides of a connection or a pipe, and the channel adapters build
 * them over.
 *
 * @since 0.1.0
 */
export * as Port from "./Port.js"

/**
 * Protocol names (Racket's protocol symbols) and what each allows.
 *
 * @since 0.1.0
 */
export * as Protocol from "./Protocol.js"

/**
 * The `Ssl` service: connect, listen, accept, serve and wrap.
 *
 * @since 0.1.0
 */
export * as Ssl from "./Ssl.js"

/**
 * Client and server contexts: certificates, keys, trust, verification and their settings.
 *
 * @since 0.1.0
 */
export * as SslContext from "./SslContext.js"

/**
 * The typed errors, one class per kind of failure.
 *
 * @since 0.1.0
 */
export * as SslError from "./SslError.js"

/**
 * The shipped public, insecure test certificate, for tests and demos only.
 *
 * @since 0.1.0
 */
export * as TestCertificates from "./TestCertificates.js"
