/**
 * A minimal DER reader: just enough ASN.1 to walk certificates and private keys. It throws
 * `DerError`; callers turn that into their typed failure at one boundary.
 *
 * @internal
 */

/** @internal */
export class DerError extends Error {
  override readonly name = "DerError"
}

/** @internal */
export interface Element {
  /** the identifier octet (class, constructed bit and tag number) */
  readonly tag: number
  /** the whole encoding, header included */
  readonly bytes: Uint8Array
  readonly content: Uint8Array
}

/** @internal */
export const Tag = {
  Integer: 0x02,
  BitString: 0x03,
  OctetString: 0x04,
  Null: 0x05,
  ObjectIdentifier: 0x06,
  Sequence: 0x30,
  Set: 0x31
} as const

/** A context-specific tag, `[n]`: constructed for EXPLICIT tagging or IMPLICIT over a constructed type. @internal */
export const contextTag = (n: number, constructed: boolean): number => (constructed ? 0xa0 : 0x80) | n

const isConstructed = (tag: number): boolean => (tag & 0x20) !== 0

const readAt = (bytes: Uint8Array, offset: number): Element => {
  if (offset + 2 > bytes.length) throw new DerError("truncated DER (no room for a header)")
  const tag = bytes[offset]!
  // Certificates and keys only use tag numbers below 31; the multi-byte form means garbage here.
  if ((tag & 0x1f) === 0x1f) throw new DerError("unexpected high tag number")
  let length = bytes[offset + 1]!
  let header = 2
  if (length & 0x80) {
    const count = length & 0x7f
    // 0x80 is BER's indefinite length, which DER forbids; more than 4 octets cannot fit anyway.
    if (count === 0 || count > 4) throw new DerError("invalid DER length")
    if (offset + 2 + count > bytes.length) throw new DerError("truncated DER length")
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + bytes[offset + 2 + i]!
    header += count
  }
  const end = offset + header + length
  if (end > bytes.length) throw new DerError("truncated DER (content runs past the end)")
  return { tag, bytes: bytes.subarray(offset, end), content: bytes.subarray(offset + header, end) }
}

/** Exactly one element filling all of `bytes`. @internal */
export const decode = (bytes: Uint8Array): Element => {
  const element = readAt(bytes, 0)
  if (element.bytes.length !== bytes.length) throw new DerError("trailing bytes after the DER structure")
  return element
}

/** The first element of `bytes`, ignoring what follows (OpenSSL's TRUSTED CERTIFICATE appends data). @internal */
export const decodePrefix = (bytes: Uint8Array): Element => readAt(bytes, 0)

/** The elements inside a constructed element. @internal */
export const children = (element: Element): ReadonlyArray<Element> => {
  if (!isConstructed(element.tag)) throw new DerError("expected a constructed element")
  const out: Array<Element> = []
  let offset = 0
  while (offset < element.content.length) {
    const child = readAt(element.content, offset)
    out.push(child)
    offset += child.bytes.length
  }
  return out
}

/** The element, checked to be present and to carry `tag`. @internal */
export const expect = (element: Element | undefined, tag: number, what: string): Element => {
  if (element === undefined) throw new DerError(`missing ${what}`)
  if (element.tag !== tag) {
    throw new DerError(`expected ${what} (tag 0x${hexByte(tag)}), found tag 0x${hexByte(element.tag)}`)
  }
  return element
}

/** Children of a SEQUENCE, checked to be one. @internal */
export const sequence = (element: Element | undefined, what: string): ReadonlyArray<Element> =>
  children(expect(element, Tag.Sequence, what))

/** Dotted text of an OBJECT IDENTIFIER. @internal */
export const oid = (element: Element): string => {
  const content = expect(element, Tag.ObjectIdentifier, "an object identifier").content
  if (content.length === 0) throw new DerError("empty object identifier")
  const arcs: Array<string> = []
  let value = 0n
  for (let i = 0; i < content.length; i++) {
    const byte = content[i]!
    value = (value << 7n) | BigInt(byte & 0x7f)
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) {
        // The first subidentifier packs two arcs: 40 * first + second, with first at most 2.
        const first = value < 40n ? 0n : value < 80n ? 1n : 2n
        arcs.push(String(first), String(value - first * 40n))
      } else {
        arcs.push(String(value))
      }
      value = 0n
    } else if (i === content.length - 1) {
      throw new DerError("truncated object identifier")
    }
  }
  return arcs.join(".")
}

/** The non-negative INTEGER's value. @internal */
export const integer = (element: Element | undefined, what: string): bigint => {
  const content = expect(element, Tag.Integer, what).content
  if (content.length === 0) throw new DerError(`empty INTEGER (${what})`)
  if (content[0]! & 0x80) throw new DerError(`negative INTEGER (${what})`)
  let value = 0n
  for (const byte of content) value = (value << 8n) | BigInt(byte)
  return value
}

/** The bytes of a BIT STRING whose length is a whole number of octets (all keys are). @internal */
export const bitString = (element: Element | undefined, what: string, tag: number = Tag.BitString): Uint8Array => {
  const content = expect(element, tag, what).content
  if (content.length === 0 || content[0] !== 0) throw new DerError(`BIT STRING with unused bits (${what})`)
  return content.subarray(1)
}

/** Lowercase hex without separators. @internal */
export const hex = (bytes: Uint8Array): string => {
  let out = ""
  for (const byte of bytes) out += hexByte(byte)
  return out
}

function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, "0")
}
