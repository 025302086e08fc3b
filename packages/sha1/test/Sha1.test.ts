import { Sha1 } from "@effect-ssl/sha1"
import { describe, expect, it, vi } from "@effect/vitest"
import { Chunk, Context, Data, Effect, Option, Stream } from "effect"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { prng, randomInt, seededBytes } from "../../core/test/helpers/Random.js"

const implementations: ReadonlyArray<Sha1.ImplementationName> = ["native", "portable"]

const nodeSha1 = (data: Uint8Array | string): string => createHash("sha1").update(data).digest("hex")

/** `data` cut at the given offsets (ascending; equal offsets make empty chunks). */
const cutAt = (data: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const pieces: Array<Uint8Array> = []
  let from = 0
  for (const cut of cuts) {
    pieces.push(data.subarray(from, cut))
    from = cut
  }
  pieces.push(data.subarray(from))
  return pieces
}

/** One stream chunk per piece, so each piece arrives as its own pull. */
const streamOf = (pieces: ReadonlyArray<Uint8Array>): Stream.Stream<Uint8Array> =>
  Stream.fromChunks(...pieces.map(Chunk.of))

class Boom extends Data.TaggedError("Boom")<{ readonly after: number }> {}

class Source extends Context.Tag("test/Source")<Source, { readonly bytes: Uint8Array }>() {}

const FIPS_VECTORS: ReadonlyArray<readonly [name: string, input: string, digest: string]> = [
  ["empty", "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"],
  ["abc", "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"],
  [
    "448-bit",
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
    "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
  ],
  ["one million a", "a".repeat(1_000_000), "34aa973cd4c4daa4f61eeb2bdbad27316534016f"]
]

for (const implementation of implementations) {
  const run = <A, E>(effect: Effect.Effect<A, E>) => Sha1.withImplementation(effect, implementation)

  describe(`Sha1 (${implementation})`, () => {
    it.effect("is the implementation in force", () =>
      run(Effect.gen(function*() {
        expect(yield* Sha1.Implementation).toBe(implementation)
      })))

    for (const [name, input, digest] of FIPS_VECTORS) {
      it.effect(`FIPS 180 vector: ${name}`, () =>
        run(Effect.gen(function*() {
          const bytes = new TextEncoder().encode(input)
          expect(yield* Sha1.sha1(input)).toBe(digest)
          expect(yield* Sha1.sha1(bytes)).toBe(digest)
          expect(yield* Sha1.sha1(Stream.make(bytes))).toBe(digest)
          // The same message delivered in 1000-byte chunks.
          const pieces = cutAt(bytes, Array.from({ length: Math.floor(bytes.length / 1000) }, (_, i) => (i + 1) * 1000))
          expect(yield* Sha1.sha1(streamOf(pieces))).toBe(digest)
          expect(Sha1.bytesToHexString(yield* Sha1.sha1Bytes(input))).toBe(digest)
        })))
    }

    it.effect("sha1Bytes gives the 20 digest bytes as a plain Uint8Array", () =>
      run(Effect.gen(function*() {
        const bytes = yield* Sha1.sha1Bytes("abc")
        expect(bytes.constructor).toBe(Uint8Array)
        expect(bytes).toEqual(new Uint8Array(createHash("sha1").update("abc").digest()))
      })))

    it.effect("every length from 0 to 130 bytes (around 55/56/63/64 and two blocks) matches node:crypto", () =>
      run(Effect.gen(function*() {
        const data = seededBytes(prng(0x5eed), 130)
        for (let length = 0; length <= 130; length++) {
          const message = data.subarray(0, length)
          const expected = nodeSha1(message)
          expect(yield* Sha1.sha1(message), `length ${length}`).toBe(expected)
          expect(yield* Sha1.sha1(Stream.make(message)), `length ${length}, streamed`).toBe(expected)
        }
      })))

    // The exhaustive splits below put all pieces in one stream chunk (Stream.fromIterable):
    // each piece still reaches the hasher as its own update, and a run costs half as much as
    // one pull per piece, which keeps these thousands of runs fast. Other tests pull piece by piece.
    it.effect("a small message split at every possible boundary, with empty chunks, hashes as one piece", () =>
      run(Effect.gen(function*() {
        // Every way of cutting messages of up to 9 bytes (2^(n-1) ways), and each way again
        // with an empty piece slipped in (in front, between two pieces or at the end).
        for (let length = 0; length <= 9; length++) {
          const message = seededBytes(prng(length + 1), length)
          const expected = nodeSha1(message)
          const ways = length === 0 ? 1 : 1 << (length - 1)
          for (let mask = 0; mask < ways; mask++) {
            const cuts: Array<number> = []
            for (let i = 1; i < length; i++) if (mask & (1 << (i - 1))) cuts.push(i)
            const pieces = cutAt(message, cuts)
            const withEmpty = [...pieces]
            withEmpty.splice(mask % (pieces.length + 1), 0, new Uint8Array(0))
            for (const split of [pieces, withEmpty]) {
              expect(yield* Sha1.sha1(Stream.fromIterable(split)), `pieces of ${split.map((p) => p.length)}`)
                .toBe(expected)
            }
          }
        }
      })))

    it.effect("a message just over one block split into three pieces at every pair of boundaries", () =>
      run(Effect.gen(function*() {
        // 65 bytes: the pieces start, end and straddle the block end (and the 55/56 padding edge)
        // in every combination, empty pieces included.
        const message = seededBytes(prng(65), 65)
        const expected = nodeSha1(message)
        for (let i = 0; i <= 65; i++) {
          for (let j = i; j <= 65; j++) {
            expect(yield* Sha1.sha1(Stream.fromIterable(cutAt(message, [i, j]))), `cut at ${i} and ${j}`)
              .toBe(expected)
          }
        }
      })))

    it.effect("messages around one and two blocks split in two at every boundary", () =>
      run(Effect.gen(function*() {
        for (const length of [55, 56, 63, 64, 119, 120, 127, 128, 129, 130]) {
          const message = seededBytes(prng(length), length)
          const expected = nodeSha1(message)
          for (let i = 0; i <= length; i++) {
            expect(yield* Sha1.sha1(Stream.fromIterable(cutAt(message, [i]))), `length ${length}, cut at ${i}`)
              .toBe(expected)
          }
        }
      })))

    it.effect("a large message split at random boundaries hashes as one piece", () =>
      run(Effect.gen(function*() {
        const message = seededBytes(prng(42), 3 * 1024 * 1024 + 17)
        const expected = nodeSha1(message)
        expect(yield* Sha1.sha1(message)).toBe(expected)
        for (let seed = 1; seed <= 12; seed++) {
          const random = prng(seed)
          const next = (bound: number) => randomInt(random, 0, bound - 1)
          const cuts: Array<number> = []
          // Pieces from empty to 256 KiB, many of them odd-sized and not block-aligned.
          for (let at = next(70); at < message.length; at += next(seed % 2 === 0 ? 262_144 : 4_096)) cuts.push(at)
          expect(yield* Sha1.sha1(streamOf(cutAt(message, cuts))), `seed ${seed}`).toBe(expected)
        }
      })))

    it.effect("reads bytes from a view at any offset into its buffer", () =>
      run(Effect.gen(function*() {
        const buffer = seededBytes(prng(7), 4096 + 3)
        for (const offset of [0, 1, 2, 3]) {
          const view = buffer.subarray(offset, offset + 4096)
          expect(yield* Sha1.sha1(view), `offset ${offset}`).toBe(nodeSha1(view))
        }
      })))

    it.effect("a string is hashed as UTF-8, multi-byte characters included", () =>
      run(Effect.gen(function*() {
        const strings = [
          "héllo wörld",
          "日本語のテキスト",
          "emoji 😀🎉 and 𝄞 (four bytes each)",
          "mixed: a é € 😀 ".repeat(50), // crosses block boundaries mid-character
          "\uD800 lone surrogate" // encoded as U+FFFD, as TextEncoder and Buffer both do
        ]
        for (const s of strings) {
          const expected = createHash("sha1").update(s, "utf8").digest("hex")
          expect(yield* Sha1.sha1(s), s).toBe(expected)
          expect(yield* Sha1.sha1(new TextEncoder().encode(s)), s).toBe(expected)
        }
      })))

    it.effect("a failing stream fails with its own error, unchanged", () =>
      run(Effect.gen(function*() {
        const boom = new Boom({ after: 3 })
        const failing = Stream.concat(Stream.make(new Uint8Array([1, 2, 3])), Stream.fail(boom))
        // The error type is the stream's, not widened.
        const hashed: Effect.Effect<string, Boom> = Sha1.sha1(failing)
        const error = yield* Effect.flip(hashed)
        expect(error).toBe(boom)
        const recovered = yield* Sha1.sha1Bytes(failing).pipe(Effect.catchTag("Boom", (e) => Effect.succeed(e.after)))
        expect(recovered).toBe(3)
      })))

    it.effect("a stream's requirements pass through to the result", () =>
      run(Effect.gen(function*() {
        const fromService = Stream.unwrap(Effect.map(Source, ({ bytes }) => Stream.make(bytes)))
        const hashed: Effect.Effect<string, never, Source> = Sha1.sha1(fromService)
        const digest = yield* Effect.provideService(hashed, Source, { bytes: new TextEncoder().encode("abc") })
        expect(digest).toBe("a9993e364706816aba3e25717850c26c9cd0d89d")
      })))

    it.effect("running the same effect twice hashes the stream afresh each time", () =>
      run(Effect.gen(function*() {
        const hashed = Sha1.sha1(Stream.make(new Uint8Array([0x61]), new Uint8Array([0x62, 0x63])))
        expect(yield* hashed).toBe("a9993e364706816aba3e25717850c26c9cd0d89d")
        expect(yield* hashed).toBe("a9993e364706816aba3e25717850c26c9cd0d89d")
      })))

    it.effect("hashes a 256 MiB generated stream in constant memory", () =>
      run(Effect.gen(function*() {
        const total = 256 * 1024 * 1024
        const chunkSize = 1024 * 1024 - 5 // never block-aligned
        // Chunks are made on demand and dropped once hashed: the stream is never held.
        const generated = Stream.unfold({ sent: 0, x: 0x9e3779b9 | 0 }, (s) => {
          if (s.sent >= total) return Option.none()
          const size = Math.min(chunkSize, total - s.sent)
          const bytes = new Uint8Array(size)
          const words = new Uint32Array(bytes.buffer, 0, size >>> 2)
          let x = s.x
          for (let i = 0; i < words.length; i++) {
            x ^= x << 13
            x ^= x >>> 17
            x ^= x << 5
            words[i] = x
          }
          return Option.some([bytes, { sent: s.sent + size, x }] as const)
        })
        // ArrayBuffer contents live outside the JS heap, so count both.
        const used = () => {
          const m = process.memoryUsage()
          return m.heapUsed + m.arrayBuffers
        }
        const reference = createHash("sha1")
        const before = used()
        let peak = 0
        const digest = yield* Sha1.sha1(
          generated.pipe(Stream.tap((bytes) =>
            Effect.sync(() => {
              reference.update(bytes)
              peak = Math.max(peak, used() - before)
            })
          ))
        )
        expect(digest).toBe(reference.digest("hex"))
        // Holding the data would take 256 MiB; garbage chunks awaiting collection take some
        // (V8 collects after ~64 MiB of new buffers).
        expect(peak).toBeLessThan(total / 2)
      })))
  })
}

describe("Sha1 (both implementations)", () => {
  it.effect("native is the default on Node", () =>
    Effect.gen(function*() {
      expect(yield* Sha1.Implementation).toBe("native")
    }))

  it.effect("both paths give the same digest for the same chunks", () =>
    Effect.gen(function*() {
      const message = seededBytes(prng(9), 200_003)
      const pieces = cutAt(message, [0, 1, 63, 64, 64, 1000, 65_536, 100_001])
      const native = yield* Sha1.sha1(streamOf(pieces)).pipe(Sha1.withImplementation("native"))
      const portable = yield* Sha1.sha1(streamOf(pieces)).pipe(Sha1.withImplementation("portable"))
      expect(portable).toBe(native)
      expect(native).toBe(nodeSha1(message))
    }))

  it.effect("asking for native where node:crypto is unreachable falls back to portable", () =>
    Effect.gen(function*() {
      const probe = vi.spyOn(process, "getBuiltinModule").mockReturnValue(undefined as never)
      vi.resetModules()
      const fresh = yield* Effect.promise(() => import("../src/Sha1.js"))
      const digest = yield* fresh.sha1("abc").pipe(fresh.withImplementation("native"))
      expect(probe).toHaveBeenCalledWith("node:crypto")
      expect(digest).toBe("a9993e364706816aba3e25717850c26c9cd0d89d")
    }).pipe(Effect.ensuring(Effect.sync(() => vi.restoreAllMocks()))))

  it("works in a runtime without process or node:crypto, defaulting to portable", () => {
    const index = pathToFileURL(fileURLToPath(new URL("../src/index.ts", import.meta.url))).href
    const script = `
      delete globalThis.process.getBuiltinModule
      const { Effect } = await import("effect")
      const { Sha1 } = await import(${JSON.stringify(index)})
      const log = console.log
      globalThis.process = undefined
      log(JSON.stringify([
        Effect.runSync(Sha1.Implementation),
        Effect.runSync(Sha1.sha1("abc")),
        Effect.runSync(Sha1.sha1("abc").pipe(Sha1.withImplementation("native")))
      ]))
    `
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      encoding: "utf8"
    })
    expect(JSON.parse(out)).toEqual([
      "portable",
      "a9993e364706816aba3e25717850c26c9cd0d89d",
      "a9993e364706816aba3e25717850c26c9cd0d89d"
    ])
  })

  it("the package imports no node:* module statically", () => {
    const srcDir = fileURLToPath(new URL("../src", import.meta.url))
    const files = readdirSync(srcDir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"))
    expect(files.length).toBeGreaterThan(0)
    for (const file of files) {
      const text = readFileSync(join(srcDir, file), "utf8")
      expect(text, file).not.toMatch(/from\s+["'](node:|crypto["'])|import\s*\(\s*["']node:|require\s*\(/)
    }
  })
})

describe("hex", () => {
  it("bytesToHexString gives two lowercase digits per byte", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i)
    const hex = Sha1.bytesToHexString(all)
    expect(hex).toBe(Buffer.from(all).toString("hex"))
    expect(Sha1.bytesToHexString(new Uint8Array(0))).toBe("")
  })

  it.effect("round trips bytes -> hex -> bytes for every byte value and many lengths", () =>
    Effect.gen(function*() {
      for (let length = 0; length <= 300; length += 7) {
        const bytes = seededBytes(prng(length + 11), length)
        expect(yield* Sha1.hexStringToBytes(Sha1.bytesToHexString(bytes))).toEqual(bytes)
      }
      const all = Uint8Array.from({ length: 256 }, (_, i) => i)
      expect(yield* Sha1.hexStringToBytes(Sha1.bytesToHexString(all))).toEqual(all)
    }))

  it.effect("round trips a digest: hex -> bytes -> hex", () =>
    Effect.gen(function*() {
      const hex = yield* Sha1.sha1("abc")
      const bytes = yield* Sha1.hexStringToBytes(hex)
      expect(bytes).toEqual(yield* Sha1.sha1Bytes("abc"))
      expect(Sha1.bytesToHexString(bytes)).toBe(hex)
    }))

  it.effect("accepts upper and mixed case", () =>
    Effect.gen(function*() {
      expect(yield* Sha1.hexStringToBytes("DEADBEEF")).toEqual(new Uint8Array([0xde, 0xad, 0xbe, 0xef]))
      expect(yield* Sha1.hexStringToBytes("00fF10aA")).toEqual(new Uint8Array([0x00, 0xff, 0x10, 0xaa]))
      expect(yield* Sha1.hexStringToBytes("")).toEqual(new Uint8Array(0))
    }))

  it.effect("an odd length is a typed failure naming the length and the unpaired digit", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Sha1.hexStringToBytes("abc"))
      expect(error).toBeInstanceOf(Sha1.InvalidHexStringError)
      expect(error._tag).toBe("InvalidHexStringError")
      expect(error.reason).toBe("OddLength")
      expect(error.position).toBe(2)
      expect(error.message).toContain("odd length 3")
      expect(error.message).toContain("position 2")
    }))

  it.effect("a non-hex character is a typed failure naming the character and its position", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, number, string]> = [
        ["zz", 0, "z"],
        ["0g", 1, "g"],
        ["00 11", 2, " "],
        ["0x12", 1, "x"],
        ["ab\u00e9f", 2, "\u00e9"],
        ["ab😀", 2, "😀"]
      ]
      for (const [input, position, character] of cases) {
        const error = yield* Effect.flip(Sha1.hexStringToBytes(input))
        expect(error.reason, input).toBe("InvalidCharacter")
        expect(error.position, input).toBe(position)
        expect(error.character, input).toBe(character)
        expect(error.message, input).toContain(`${JSON.stringify(character)} at position ${position}`)
      }
    }))

  it.effect("the failure can be caught by its tag", () =>
    Effect.gen(function*() {
      const recovered = yield* Sha1.hexStringToBytes("xyz").pipe(
        Effect.catchTag("InvalidHexStringError", (e) => Effect.succeed(e.reason))
      )
      expect(recovered).toBe("InvalidCharacter")
    }))
})
