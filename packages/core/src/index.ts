/**
 * @since 0.1.0
 */

/**
 * What OpenSSL decides for a context, as a platform service: parsing certificates and keys,
 * matching a key to a certificate, checking host names, describing a certificate.
 *
 * @since 0.2.0
 */
export * as Pki from "./Pki.js"

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
 * Metrics of connections: handshakes by outcome and their durations, open connections, bytes.
 *
 * @since 0.2.0
 */
export * as SslMetrics from "./SslMetrics.js"

/**
 * The shipped public, insecure test certificate, for tests and demos only.
 *
 * @since 0.1.0
 */
export * as TestCertificates from "./TestCertificates.js"
