/**
 * The effect-ssl side of the figures: the runtime, contexts made from the fixtures, and reading
 * and writing loops over the ports.
 *
 * Contexts are loaded from the fixtures' PEM text (read with node:fs, the same bytes the raw side
 * uses) rather than through @effect/platform's FileSystem: @effect/platform-node takes over a
 * second to import, which every child process would pay.
 */
import { type Pki, type Ssl as SslT, SslContext, type SslError } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { readFileSync } from "node:fs"
import { type CertKind, CHUNK, chunk, identities, rootCa } from "./common.js"

export type EffectEnv = SslT.Ssl | SslContext.CipherValidator | Pki.Pki

export const layer: Layer.Layer<EffectEnv> = NodeSsl.layer

export const makeRuntime = () => ManagedRuntime.make(layer)

export type Runtime = ManagedRuntime.ManagedRuntime<EffectEnv, never>

/** How the figures' contexts differ from the defaults. */
export interface ContextOptions {
  /** `SslContext.setDetectTruncation(ctx, true)`: the "(truncation detection)" figures */
  readonly detectTruncation?: boolean
}

/** A server context holding the fixture chain and key. */
export const serverContext = (
  kind: CertKind,
  options: ContextOptions = {}
): Effect.Effect<SslContext.ServerContext, SslError.SslError, Pki.Pki> =>
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeServer("auto")
    yield* SslContext.loadCertificateChainPem(ctx, readFileSync(identities[kind].chain, "utf8"))
    yield* SslContext.loadPrivateKeyPem(ctx, readFileSync(identities[kind].key, "utf8"), { rsa: false })
    if (options.detectTruncation === true) yield* SslContext.setDetectTruncation(ctx, true)
    return ctx
  })

/**
 * A client context that verifies the server against the fixture root CA. Its session cache is off
 * (full handshakes, as the raw side makes them: it keeps no sessions) unless `sessionCache` asks
 * for the default, on.
 */
export const clientContext = (
  protocol: "auto" | "tls1.3" = "auto",
  options: ContextOptions & { readonly sessionCache?: boolean } = {}
): Effect.Effect<SslContext.ClientContext, SslError.SslError, Pki.Pki> =>
  Effect.gen(function*() {
    const ctx = yield* SslContext.makeClient(protocol)
    yield* SslContext.loadVerifyRootCertificatesPem(ctx, readFileSync(rootCa, "utf8"))
    if (options.sessionCache !== true) yield* SslContext.setSessionCache(ctx, false)
    if (options.detectTruncation === true) yield* SslContext.setDetectTruncation(ctx, true)
    return ctx
  })

/** Reads until end of input; the number of bytes read. */
export const drain = (input: SslT.Connection["input"]): Effect.Effect<number, SslError.SslError> =>
  Effect.suspend(() => {
    let total = 0
    const loop: Effect.Effect<number, SslError.SslError> = Effect.flatMap(input.read(), (chunk) => {
      if (Option.isNone(chunk)) return Effect.succeed(total)
      total += chunk.value.length
      return loop
    })
    return loop
  })

/** Reads until `bytes` bytes have come (or end of input); the number read. */
export const readCount = (
  input: SslT.Connection["input"],
  bytes: number
): Effect.Effect<number, SslError.SslError> =>
  Effect.suspend(() => {
    let total = 0
    const loop: Effect.Effect<number, SslError.SslError> = Effect.suspend(() =>
      total >= bytes ? Effect.succeed(total) : Effect.flatMap(input.read(), (chunk) => {
        if (Option.isNone(chunk)) return Effect.succeed(total)
        total += chunk.value.length
        return loop
      })
    )
    return loop
  })

/** Writes `bytes` bytes in `piece`-sized writes (CHUNK by default; the last one shorter). */
export const writeCount = (
  output: SslT.Connection["output"],
  bytes: number,
  piece: number = CHUNK
): Effect.Effect<void, SslError.SslError> =>
  Effect.suspend(() => {
    let left = bytes
    const whole = piece === CHUNK ? chunk : chunk.subarray(0, piece)
    const loop: Effect.Effect<void, SslError.SslError> = Effect.suspend(() => {
      if (left <= 0) return Effect.void
      const n = Math.min(piece, left)
      left -= n
      return Effect.zipRight(output.write(n === piece ? whole : chunk.subarray(0, n)), loop)
    })
    return loop
  })
