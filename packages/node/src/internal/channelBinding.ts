/**
 * Channel binding data (RFC 5929, RFC 9266) of an established connection.
 *
 * @internal
 */
import type { Ssl } from "@effect-ssl/core"
import { SslError } from "@effect-ssl/core"
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import type * as Tls from "node:tls"
import { parsedCertificate } from "./x509.js"

const unavailable = (type: Ssl.ChannelBindingType, reason: string) =>
  Effect.fail(new SslError.InvalidArgumentError({ argument: "type", value: type, reason }))

// RFC 5929 4.1: the hash of the certificate's own signature algorithm, with MD5 and SHA-1
// promoted to SHA-256.
const endPointHash = (x509: Crypto.X509Certificate): string => {
  // Node has no accessor for the signature algorithm; its OID appears in the DER (twice).
  const hex = x509.raw.toString("hex")
  return signatureHashOids.find(([oid]) => hex.includes(`06${(oid.length / 2).toString(16).padStart(2, "0")}${oid}`))
    ?.[1] ??
    "sha256"
}

const signatureHashOids: ReadonlyArray<readonly [string, string]> = [
  ["2a864886f70d01010c", "sha384"], // sha384WithRSAEncryption
  ["2a864886f70d01010d", "sha512"], // sha512WithRSAEncryption
  ["2a8648ce3d040303", "sha384"], // ecdsa-with-SHA384
  ["2a8648ce3d040304", "sha512"] // ecdsa-with-SHA512
]

/** @internal */
export const channelBinding = (
  socket: Tls.TLSSocket,
  /** the connection's scope has ended */
  released: boolean,
  mode: "connect" | "accept",
  type: Ssl.ChannelBindingType,
  /** the server's certificate (DER): the peer's on a client, our own leaf on a server */
  serverLeaf: Uint8Array | undefined
): Effect.Effect<Uint8Array, SslError.InvalidArgumentError> =>
  Effect.suspend(() => {
    switch (type) {
      case "tls-unique": {
        if (socket.getProtocol() === "TLSv1.3") {
          return unavailable(type, "tls-unique is not defined for TLS 1.3; use tls-exporter")
        }
        // The first Finished message of the handshake: the client's, on a full handshake.
        const finished = mode === "connect" ? socket.getFinished() : socket.getPeerFinished()
        return finished === undefined ? unavailable(type, "no handshake yet") : Effect.succeed(new Uint8Array(finished))
      }
      case "tls-exporter":
        // A destroyed socket has no TLS state left to export from.
        if (released || socket.destroyed) {
          return unavailable(type, "the connection is closed")
        }
        return Effect.try({
          try: () => new Uint8Array(socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0))),
          catch: (error) => new SslError.InvalidArgumentError({ argument: "type", value: type, reason: String(error) })
        })
      case "tls-server-end-point": {
        if (serverLeaf === undefined) return unavailable(type, "the server has no certificate")
        const certificate = parsedCertificate(serverLeaf)
        return Effect.succeed(
          new Uint8Array(Crypto.createHash(endPointHash(certificate)).update(certificate.raw).digest())
        )
      }
      default:
        return unavailable(type, "expected tls-unique, tls-exporter or tls-server-end-point")
    }
  })
