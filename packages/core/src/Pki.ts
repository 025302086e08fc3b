/**
 * What only the platform's TLS library can decide about certificates and keys: reading them,
 * matching a key to a certificate, checking a host name against a certificate, describing a
 * certificate. Core names these here and never decides them itself; an adapter provides them
 * (`NodeSsl.layer` does, with node:crypto, that is with OpenSSL), so that a key, a chain and a
 * host name get the verdict the TLS handshake will give them.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Ssl from "./Ssl.js"
import { CertificateLoadError, PrivateKeyLoadError } from "./SslError.js"

/**
 * A certificate as loaded: the certificate alone as a PEM block, and its DER encoding.
 *
 * @since 0.2.0
 * @category models
 */
export interface Certificate {
  /** the certificate alone, as a PEM block */
  readonly pem: string
  /** its DER encoding */
  readonly der: Uint8Array
}

/**
 * The key types a loaded key is told apart by (`rsa: true` loads only the first two).
 *
 * @since 0.2.0
 * @category models
 */
export type KeyType = "rsa" | "rsa-pss" | "ec" | "ed25519" | "ed448" | "dsa" | "other"

/**
 * A private key as loaded: decrypted, as an unencrypted PKCS#8 PEM block.
 *
 * @since 0.2.0
 * @category models
 */
export interface PrivateKey {
  /** unencrypted PKCS#8 PEM, whatever the form it was read from */
  readonly pem: string
  readonly type: KeyType
}

/**
 * A PKCS#12 (PFX) file as loaded: its bytes and passphrase, handed to the platform's TLS library
 * whole, because node:crypto cannot take the key out of it (only OpenSSL's `PKCS12_parse`, behind
 * `tls.createSecureContext`, reads it).
 *
 * @since 0.2.0
 * @category models
 */
export interface Pkcs12 {
  readonly der: Uint8Array
  readonly passphrase: string | undefined
}

/**
 * How a private key is read: PEM, or DER (`asn1`); the first key of any type, or the first RSA
 * key (`rsa`); decrypted with `passphrase` when it is encrypted.
 *
 * @since 0.2.0
 * @category models
 */
export interface KeyOptions {
  readonly rsa: boolean
  readonly asn1: boolean
  readonly passphrase: string | undefined
}

/**
 * What a platform provides. Each reading function names `path` (a file, or `"<memory>"`) in the
 * typed error it fails with.
 *
 * @since 0.2.0
 * @category models
 */
export interface Service {
  /** every certificate in PEM text (other blocks are skipped), or one DER certificate */
  readonly parseCertificates: (
    data: string | Uint8Array,
    path: string
  ) => Effect.Effect<ReadonlyArray<Certificate>, CertificateLoadError>
  /** the first private key (the first RSA one with `rsa`), decrypted */
  readonly parsePrivateKey: (
    data: string | Uint8Array,
    path: string,
    options: KeyOptions
  ) => Effect.Effect<PrivateKey, PrivateKeyLoadError>
  /** a PKCS#12 file, checked (its key matches its certificate): its leaf, and the file */
  readonly parsePkcs12: (
    data: Uint8Array,
    path: string,
    passphrase: string | undefined
  ) => Effect.Effect<
    { readonly chain: ReadonlyArray<Certificate>; readonly pkcs12: Pkcs12 },
    CertificateLoadError | PrivateKeyLoadError
  >
  /** whether the key is the private half of the certificate's public key */
  readonly keyMatches: (key: PrivateKey, certificate: Certificate) => boolean
  /** the certificate as `Ssl.PeerCertificate`, able to answer `Ssl.checkHostname` */
  readonly describe: (certificate: Certificate) => Ssl.PeerCertificate
}

/**
 * The platform's certificate and key service.
 *
 * @since 0.2.0
 * @category tags
 */
export class Pki extends Context.Tag("@effect-ssl/core/Pki")<Pki, Service>() {}

/**
 * Reads certificates from PEM text or DER bytes in memory.
 *
 * @since 0.2.0
 * @category accessors
 */
export const parseCertificates = (
  data: string | Uint8Array
): Effect.Effect<ReadonlyArray<Certificate>, CertificateLoadError, Pki> =>
  Effect.flatMap(Pki, (pki) => pki.parseCertificates(data, "<memory>"))

/**
 * Describes a loaded certificate as a `Ssl.PeerCertificate` (subject, serial number, SPKI pin…).
 *
 * @since 0.2.0
 * @category accessors
 */
export const describe = (certificate: Certificate): Effect.Effect<Ssl.PeerCertificate, never, Pki> =>
  Effect.map(Pki, (pki) => pki.describe(certificate))

/**
 * @since 0.2.0
 * @category type ids
 */
export const HostCheckTypeId: unique symbol = Symbol.for("@effect-ssl/core/Pki/HostCheck")

/**
 * What a `PeerCertificate` built by the platform carries (under `HostCheckTypeId`, not
 * enumerable) so that the synchronous `Ssl.checkHostname` and `Ssl.peerHostnames` get the
 * platform's answer.
 *
 * @since 0.2.0
 * @category models
 */
export interface HostCheck {
  /**
   * a DNS name or an IP address (IPv6 without brackets), as OpenSSL checks it; a name written
   * absolute ("example.com.") is the same name
   */
  readonly matches: (hostname: string) => boolean
  /** the DNS subject alt names, else every common name */
  readonly hostnames: ReadonlyArray<string>
}

/**
 * Attaches the platform's host check to a certificate it described.
 *
 * @since 0.2.0
 * @category constructors
 */
export const withHostCheck = <A extends Ssl.PeerCertificate>(certificate: A, check: HostCheck): A =>
  Object.defineProperty(certificate, HostCheckTypeId, { value: check, enumerable: false })

/**
 * The platform's host check of a certificate, if the platform described it.
 *
 * @since 0.2.0
 * @category getters
 */
export const hostCheckOf = (certificate: Ssl.PeerCertificate): HostCheck | undefined =>
  (certificate as { readonly [HostCheckTypeId]?: HostCheck })[HostCheckTypeId]

/**
 * A layer for runtimes without a crypto library: every certificate or key fails to load with
 * reason `"Unavailable"`, carrying `reason`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerUnavailable = (reason: string): Layer.Layer<Pki> =>
  Layer.succeed(Pki, {
    parseCertificates: (_, path) =>
      Effect.fail(new CertificateLoadError({ path, reason: "Unavailable", cause: reason })),
    parsePrivateKey: (_, path) => Effect.fail(new PrivateKeyLoadError({ path, reason: "Unavailable", cause: reason })),
    parsePkcs12: (_, path) => Effect.fail(new PrivateKeyLoadError({ path, reason: "Unavailable", cause: reason })),
    keyMatches: () => false,
    describe: (certificate) => ({
      subject: "",
      issuer: "",
      validFrom: new Date(0),
      validTo: new Date(0),
      fingerprint256: "",
      subjectAltNames: [],
      der: certificate.der,
      serialNumber: "",
      spkiSha256: ""
    })
  })
