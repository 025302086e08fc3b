/**
 * Reads the ALPN offer out of the first bytes a TLS client sends, before OpenSSL sees them.
 *
 * Node 20 answers a client whose ALPN offer shares nothing with the server's list with a fatal
 * `no_application_protocol` alert (nodejs/node#44031); a server socket with no ALPN list
 * continues without ALPN. Knowing the offer before OpenSSL reads it lets a server that allows no
 * match pick between the two per connection.
 *
 * @internal
 */

/** What the bytes so far say about the client's ALPN offer. */
export type ClientHelloAlpn =
  /** the ClientHello is incomplete: nothing can be said before `atLeast` bytes in all */
  | { readonly _tag: "NeedMore"; readonly atLeast: number }
  /** a complete ClientHello: the offered protocols, or undefined when it carries no ALPN */
  | { readonly _tag: "Offered"; readonly protocols: ReadonlyArray<string> | undefined }
  /** not a ClientHello this parser understands: let OpenSSL judge it */
  | { readonly _tag: "Unreadable" }

const needMore = (atLeast: number): ClientHelloAlpn => ({ _tag: "NeedMore", atLeast })
const unreadable: ClientHelloAlpn = { _tag: "Unreadable" }

const RECORD_HANDSHAKE = 22
const HANDSHAKE_CLIENT_HELLO = 1
const EXTENSION_ALPN = 0x0010
const MAX_RECORD = 2 ** 14
/** a ClientHello longer than this is left to OpenSSL (real ones are a few KiB at most) */
const MAX_HELLO = 64 * 1024
/**
 * nor one spread over more records than this: real clients send one, or a few when the hello
 * outgrows a record, and every record more costs a parse of all the bytes so far.
 */
const MAX_RECORDS = 8

/**
 * Parses the ClientHello from the start of a connection's bytes, which may split it anywhere and
 * spread it over several handshake records.
 */
export const parseClientHelloAlpn = (bytes: Uint8Array): ClientHelloAlpn => {
  // The handshake message, gathered from the records' fragments.
  const message: Array<Uint8Array> = []
  let gathered = 0
  let expected = -1
  let offset = 0
  for (let records = 0; expected < 0 || gathered < expected; records++) {
    if (records === MAX_RECORDS) return unreadable
    if (bytes.length < offset + 5) return needMore(offset + 5)
    if (bytes[offset] !== RECORD_HANDSHAKE || bytes[offset + 1] !== 3) return unreadable
    const length = (bytes[offset + 3]! << 8) | bytes[offset + 4]!
    // Plaintext records hold at most 2^14 bytes (RFC 8446 5.1): anything else is OpenSSL's to refuse.
    if (length === 0 || length > MAX_RECORD) return unreadable
    if (bytes.length < offset + 5 + length) return needMore(offset + 5 + length)
    message.push(bytes.subarray(offset + 5, offset + 5 + length))
    gathered += length
    offset += 5 + length
    if (expected < 0 && gathered >= 4) {
      const head = concat(message, 4)
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return unreadable
      expected = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!)
      if (expected > MAX_HELLO) return unreadable
    }
  }
  return readAlpn(concat(message, expected).subarray(4))
}

const concat = (parts: ReadonlyArray<Uint8Array>, length: number): Uint8Array => {
  if (parts.length === 1) return parts[0]!.subarray(0, length)
  const out = new Uint8Array(length)
  let at = 0
  for (const part of parts) {
    const take = Math.min(part.length, length - at)
    out.set(part.subarray(0, take), at)
    at += take
    if (at === length) break
  }
  return out
}

// ClientHello: version(2) random(32) session_id<1> cipher_suites<2> compression_methods<1>
// extensions<2> (RFC 8446 4.1.2; extensions may be absent in TLS 1.2 and below).
const readAlpn = (body: Uint8Array): ClientHelloAlpn => {
  let at = 34
  const skip = (lengthBytes: 1 | 2): boolean => {
    if (body.length < at + lengthBytes) return false
    const length = lengthBytes === 1 ? body[at]! : (body[at]! << 8) | body[at + 1]!
    at += lengthBytes + length
    return body.length >= at
  }
  if (!skip(1) || !skip(2) || !skip(1)) return unreadable
  if (at === body.length) return { _tag: "Offered", protocols: undefined }
  if (body.length < at + 2) return unreadable
  const end = at + 2 + ((body[at]! << 8) | body[at + 1]!)
  if (end > body.length) return unreadable
  at += 2
  while (at + 4 <= end) {
    const type = (body[at]! << 8) | body[at + 1]!
    const length = (body[at + 2]! << 8) | body[at + 3]!
    at += 4
    if (at + length > end) return unreadable
    if (type === EXTENSION_ALPN) return readProtocolNames(body.subarray(at, at + length))
    at += length
  }
  return { _tag: "Offered", protocols: undefined }
}

const decoder = new TextDecoder("utf-8", { fatal: false })

const readProtocolNames = (data: Uint8Array): ClientHelloAlpn => {
  if (data.length < 2) return unreadable
  const end = 2 + ((data[0]! << 8) | data[1]!)
  if (end > data.length) return unreadable
  const protocols: Array<string> = []
  let at = 2
  while (at < end) {
    const length = data[at]!
    if (length === 0 || at + 1 + length > end) return unreadable
    protocols.push(decoder.decode(data.subarray(at + 1, at + 1 + length)))
    at += 1 + length
  }
  return { _tag: "Offered", protocols }
}
