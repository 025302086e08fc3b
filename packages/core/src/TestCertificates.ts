/**
 * The seed's public `test.pem`: a self-signed certificate and its key for localhost, 127.0.0.1
 * and ::1. Everybody has this key: it is for tests and demos only and gives no security.
 *
 * @since 0.1.0
 */
import { testCertificatePem } from "./internal/testCertificatePem.js"

/**
 * The path of `test.pem` (certificate, then key), for `SslContext.loadCertificateChain`,
 * `loadPrivateKey` and `loadVerifyRootCertificates`.
 *
 * @since 0.1.0
 * @category constants
 */
export const path: string = decodeURIComponent(new URL("../certs/test.pem", import.meta.url).pathname)

/**
 * The text of `test.pem`, for the in-memory `...Pem` variants.
 *
 * @since 0.1.0
 * @category constants
 */
export const pem: string = testCertificatePem
