/**
 * PEM blocks (RFC 7468, with RFC 1421's encapsulated headers as OpenSSL writes for legacy
 * encrypted keys) and the base64 they carry, without Buffer so that core stays platform-neutral.
 *
 * @internal
 */

/** @internal */
export interface Block {
  readonly label: string
  /** RFC 1421 headers, e.g. ["Proc-Type", "4,ENCRYPTED"] */
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** the body, whitespace removed; undefined when it is not valid base64 */
  readonly der: Uint8Array | undefined
  /** false when the END line is missing: the file was cut short */
  readonly terminated: boolean
}

const beginLine = /^-----BEGIN ([^-]+(?:-[^-]+)*)-----$/
const endLine = /^-----END ([^-]+(?:-[^-]+)*)-----$/

/**
 * Every block, in order; text around them (comments, `openssl x509 -text` output) is skipped, as
 * OpenSSL does. A BEGIN that meets another BEGIN or the end of input before its END yields an
 * unterminated block, so a truncated file is reported instead of silently read short.
 *
 * @internal
 */
export const parse = (text: string): ReadonlyArray<Block> => {
  const lines = text.split(/\r?\n|\r/).map((line) => line.trim())
  const blocks: Array<Block> = []
  let i = 0
  while (i < lines.length) {
    const begin = beginLine.exec(lines[i]!)
    i++
    if (begin === null) continue
    const label = begin[1]!
    const headers: Array<readonly [string, string]> = []
    const body: Array<string> = []
    let terminated = false
    let inHeaders = true
    while (i < lines.length) {
      const line = lines[i]!
      if (beginLine.test(line)) break
      i++
      const end = endLine.exec(line)
      if (end !== null) {
        // A mismatched END label is as broken as a missing one.
        terminated = end[1] === label
        break
      }
      if (inHeaders) {
        const colon = line.indexOf(":")
        if (colon > 0) {
          headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()])
          continue
        }
        inHeaders = false
        if (line === "") continue
      }
      body.push(line)
    }
    blocks.push({ label, headers, der: base64Decode(body.join("")), terminated })
  }
  return blocks
}

/** True for a key protected by a passphrase, in PKCS#8 or OpenSSL's legacy form. @internal */
export const isEncrypted = (block: Block): boolean =>
  block.label === "ENCRYPTED PRIVATE KEY" ||
  block.headers.some(([name, value]) => name.toLowerCase() === "proc-type" && value.toUpperCase().includes("ENCRYPTED"))

/** A normalised block: 64-column base64 between BEGIN and END lines. @internal */
export const encode = (label: string, der: Uint8Array): string => {
  const body = base64Encode(der)
  const lines: Array<string> = [`-----BEGIN ${label}-----`]
  for (let i = 0; i < body.length; i += 64) lines.push(body.slice(i, i + 64))
  lines.push(`-----END ${label}-----`, "")
  return lines.join("\n")
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
const values = new Int16Array(128).fill(-1)
for (let i = 0; i < alphabet.length; i++) values[alphabet.charCodeAt(i)] = i

/** @internal */
export const base64Encode = (bytes: Uint8Array): string => {
  let out = ""
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + alphabet[n & 63]!
  }
  const rest = bytes.length - i
  if (rest === 1) {
    const n = bytes[i]! << 16
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + "=="
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8)
    out += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + "="
  }
  return out
}

/**
 * Strict base64: whitespace is ignored, padding may only close the text, and a length that
 * cannot come from whole bytes is rejected, so that a truncated body fails here rather than
 * decoding to a shorter, different structure.
 *
 * @internal
 */
export const base64Decode = (text: string): Uint8Array | undefined => {
  const clean = text.replace(/\s+/g, "")
  const padding = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0
  const data = clean.slice(0, clean.length - padding)
  if (padding > 0 && clean.length % 4 !== 0) return undefined
  if (data.length % 4 === 1) return undefined
  const out = new Uint8Array(Math.floor((data.length * 3) / 4))
  let bits = 0
  let buffered = 0
  let o = 0
  for (let i = 0; i < data.length; i++) {
    const code = data.charCodeAt(i)
    const value = code < 128 ? values[code]! : -1
    if (value < 0) return undefined
    bits = ((bits << 6) | value) & 0xffff
    buffered += 6
    if (buffered >= 8) {
      buffered -= 8
      out[o++] = (bits >> buffered) & 0xff
    }
  }
  return out
}
