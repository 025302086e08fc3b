/**
 * @since 0.1.0
 */
export * as Port from "./Port.js"
export * as Protocol from "./Protocol.js"
export * as Ssl from "./Ssl.js"
export * as SslContext from "./SslContext.js"
export * as SslError from "./SslError.js"
export * as SslMetrics from "./SslMetrics.js"
export * as TestCertificates from "./TestCertificates.js"
