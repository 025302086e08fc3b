/**
 * Expectations on effects that must fail.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/** The typed failure of an effect that must fail (a defect or a success fails the test). */
export const failure = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<E, never, R> =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isFailure(exit)) {
      const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
      if (error !== undefined) return Effect.succeed(error)
      return Effect.dieMessage(`expected a typed failure, got cause ${String(exit.cause)}`)
    }
    return Effect.dieMessage("expected a failure, got a success")
  })
