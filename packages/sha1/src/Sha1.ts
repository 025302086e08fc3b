/**
 * Streaming SHA-1 for Effect: native speed on Node (node:crypto), pure TypeScript everywhere else.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import * as Portable from "./internal/sha1Portable.js"

/**
 * What can be hashed: a stream of byte chunks (its error and requirements pass through), bytes,
 * or a string (hashed as its UTF-8 encoding).
 *
 * @since 0.1.0
 * @category models
 */
export type Input<E = never, R = never> = Stream.Stream<Uint8Array, E, R> | Uint8Array | string

/**
 * The two ways of computing SHA-1: `"native"` (node:crypto, i.e. OpenSSL) or `"portable"` (pure
 * TypeScript, any runtime).
 *
 * @since 0.1.0
 * @category models
 */
export type ImplementationName = "native" | "portable"

// ---------------------------------------------------------------------------------------------
// node:crypto, found at run time (never imported statically, so the package stays portable)
// ---------------------------------------------------------------------------------------------

interface NodeHash {
  update(data: Uint8Array): NodeHash
  digest(): Uint8Array
}

interface NodeCrypto {
  readonly createHash: (algorithm: "sha1") => NodeHash
}

interface ProcessWithBuiltins {
  readonly getBuiltinModule?: (id: string) => unknown
}

const probeNodeCrypto = (): NodeCrypto | undefined => {
  try {
    const process = (globalThis as { readonly process?: ProcessWithBuiltins }).process
    const crypto = process?.getBuiltinModule?.("node:crypto") as Partial<NodeCrypto> | undefined
    if (typeof crypto?.createHash !== "function") return undefined
    // A crypto policy (e.g. some FIPS setups) may refuse SHA-1: then we are portable.
    crypto.createHash("sha1").update(new Uint8Array(0)).digest()
    return crypto as NodeCrypto
  } catch {
    return undefined
  }
}

let nodeCryptoProbed = false
let nodeCrypto: NodeCrypto | undefined

const getNodeCrypto = (): NodeCrypto | undefined => {
  if (!nodeCryptoProbed) {
    nodeCrypto = probeNodeCrypto()
    nodeCryptoProbed = true
  }
  return nodeCrypto
}

const makeHasher = (implementation: ImplementationName): Portable.Hasher => {
  const crypto = implementation === "native" ? getNodeCrypto() : undefined
  if (crypto === undefined) return Portable.make()
  const hash = crypto.createHash("sha1")
  return {
    update: (data) => {
      hash.update(data)
    },
    // A plain Uint8Array (not a Buffer), whichever path computed it.
    digest: () => new Uint8Array(hash.digest())
  }
}

// ---------------------------------------------------------------------------------------------
// Choosing the implementation
// ---------------------------------------------------------------------------------------------

/**
 * The SHA-1 implementation used by `sha1` and `sha1Bytes`: `"native"` by default where node:crypto
 * is reachable through `process.getBuiltinModule` (Node >= 20.16, Deno, Bun), `"portable"`
 * elsewhere; asking for `"native"` where it is unavailable falls back to `"portable"`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Sha1 } from "@effect-ssl/sha1"
 *
 * // Which path does this runtime take by default?
 * const path = Effect.runSync(Sha1.Implementation) // "native" on Node
 * ```
 *
 * @since 0.1.0
 * @category references
 */
export class Implementation extends Context.Reference<Implementation>()("@effect-ssl/sha1/Implementation", {
  defaultValue: (): ImplementationName => (getNodeCrypto() === undefined ? "portable" : "native")
}) {}

/**
 * Runs `effect` with the given SHA-1 implementation for every hash it computes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Sha1 } from "@effect-ssl/sha1"
 *
 * const digest = Sha1.sha1("abc").pipe(Sha1.withImplementation("portable"))
 * Effect.runSync(digest) // "a9993e364706816aba3e25717850c26c9cd0d89d"
 * ```
 *
 * @since 0.1.0
 * @category references
 */
export const withImplementation: {
  /**
   * Runs `effect` with the given SHA-1 implementation for every hash it computes.
   *
   * @since 0.1.0
   * @category references
   */
  (implementation: ImplementationName): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /**
   * Runs `effect` with the given SHA-1 implementation for every hash it computes.
   *
   * @since 0.1.0
   * @category references
   */
  <A, E, R>(effect: Effect.Effect<A, E, R>, implementation: ImplementationName): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(effect: Effect.Effect<A, E, R>, implementation: ImplementationName): Effect.Effect<A, E, R> =>
    Effect.provideService(effect, Implementation, implementation)
)

// ---------------------------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------------------------

const encoder = new TextEncoder()

const isStream = <E, R>(input: Input<E, R>): input is Stream.Stream<Uint8Array, E, R> =>
  Predicate.hasProperty(input, Stream.StreamTypeId)

const hashStream = <E, R>(
  stream: Stream.Stream<Uint8Array, E, R>,
  implementation: ImplementationName
): Effect.Effect<Uint8Array, E, R> => {
  // One hasher per run of the effect (this runs when the effect does): each piece is hashed as
  // it arrives and then dropped. A pure fold costs less per chunk than an effectful one.
  const hasher = makeHasher(implementation)
  return Effect.map(
    Stream.runFold(stream, hasher, (hasher, bytes) => {
      hasher.update(bytes)
      return hasher
    }),
    (hasher) => hasher.digest()
  )
}

const hashBytes = (bytes: Uint8Array, implementation: ImplementationName): Uint8Array => {
  const hasher = makeHasher(implementation)
  hasher.update(bytes)
  return hasher.digest()
}

/**
 * Computes the SHA-1 digest of `input` as 20 bytes.
 *
 * A stream is hashed chunk by chunk as it is pulled, in constant memory; its failure and its
 * requirements are those of the result.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Sha1 } from "@effect-ssl/sha1"
 *
 * const chunks = Stream.make(new Uint8Array([0x61, 0x62]), new Uint8Array([0x63]))
 * Effect.runSync(Sha1.sha1Bytes(chunks)).length // 20
 * ```
 *
 * @since 0.1.0
 * @category hashing
 */
export const sha1Bytes = <E = never, R = never>(input: Input<E, R>): Effect.Effect<Uint8Array, E, R> =>
  Effect.flatMap(Implementation, (implementation) => {
    if (typeof input === "string") return Effect.sync(() => hashBytes(encoder.encode(input), implementation))
    if (isStream(input)) return hashStream(input, implementation)
    return Effect.sync(() => hashBytes(input, implementation))
  })

/**
 * Computes the SHA-1 digest of `input` as 40 lowercase hexadecimal characters.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Sha1 } from "@effect-ssl/sha1"
 *
 * Effect.runSync(Sha1.sha1("abc")) // "a9993e364706816aba3e25717850c26c9cd0d89d"
 * ```
 *
 * @since 0.1.0
 * @category hashing
 */
export const sha1 = <E = never, R = never>(input: Input<E, R>): Effect.Effect<string, E, R> =>
  Effect.map(sha1Bytes(input), bytesToHexString)

// ---------------------------------------------------------------------------------------------
// Hexadecimal
// ---------------------------------------------------------------------------------------------

const hexByte: ReadonlyArray<string> = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

// Value of each ASCII code as a hex digit, -1 where it is not one.
const hexValue = (() => {
  const table = new Int8Array(128).fill(-1)
  for (let i = 0; i < 10; i++) table[0x30 + i] = i
  for (let i = 0; i < 6; i++) {
    table[0x41 + i] = 10 + i
    table[0x61 + i] = 10 + i
  }
  return table
})()

/**
 * Formats bytes as lowercase hexadecimal, two characters per byte.
 *
 * @since 0.1.0
 * @category hexadecimal
 */
export const bytesToHexString = (bytes: Uint8Array): string => {
  let out = ""
  for (let i = 0; i < bytes.length; i++) out += hexByte[bytes[i]]
  return out
}

/**
 * The failure of `hexStringToBytes`: the string has an odd length or a character that is not a
 * hexadecimal digit.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidHexStringError extends Data.TaggedError("InvalidHexStringError")<{
  /** `"InvalidCharacter"`: not one of 0-9, a-f, A-F; `"OddLength"`: a digit is missing. */
  readonly reason: "InvalidCharacter" | "OddLength"
  /** The index (in UTF-16 code units) of the offending character, or of the unpaired last digit. */
  readonly position: number
  /** The length of the whole string. */
  readonly length: number
  /** The offending character (the unpaired digit for `"OddLength"`). */
  readonly character: string
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.reason === "InvalidCharacter"
      ? `Invalid hex string: ${JSON.stringify(this.character)} at position ${this.position} ` +
        `is not a hexadecimal digit (expected 0-9, a-f or A-F)`
      : `Invalid hex string: odd length ${this.length}; the last digit ${JSON.stringify(this.character)} ` +
        `at position ${this.position} has no partner (each byte takes two hex digits)`
  }
}

/**
 * Parses hexadecimal (upper or lower case, two digits per byte) into bytes, failing with
 * `InvalidHexStringError` on an odd length or a non-hex character.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Sha1 } from "@effect-ssl/sha1"
 *
 * Effect.runSync(Sha1.hexStringToBytes("00fF10")) // Uint8Array [0, 255, 16]
 * ```
 *
 * @since 0.1.0
 * @category hexadecimal
 */
export const hexStringToBytes = (hex: string): Effect.Effect<Uint8Array, InvalidHexStringError> =>
  Effect.suspend(() => {
    const length = hex.length
    const bytes = new Uint8Array(length >>> 1)
    for (let i = 0; i < length; i++) {
      const code = hex.charCodeAt(i)
      const value = code < 128 ? hexValue[code] : -1
      if (value < 0) {
        const character = String.fromCodePoint(hex.codePointAt(i)!)
        return Effect.fail(new InvalidHexStringError({ reason: "InvalidCharacter", position: i, length, character }))
      }
      if ((i & 1) === 0) bytes[i >>> 1] = value << 4
      else bytes[i >>> 1] |= value
    }
    if (length % 2 !== 0) {
      return Effect.fail(
        new InvalidHexStringError({ reason: "OddLength", position: length - 1, length, character: hex[length - 1]! })
      )
    }
    return Effect.succeed(bytes)
  })
