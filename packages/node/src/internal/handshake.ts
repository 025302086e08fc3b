/**
 * The wait for a TLS handshake: one `Effect.async` step, interruptible, with the handshake
 * timeout as a timer inside it rather than a race of fibers around it.
 *
 * @internal
 */
import { SslError } from "@effect-ssl/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"

/** What a running handshake offers the wait: how to stop it. */
export interface Running {
  /** interrupted: tear the connection down */
  readonly cancel: () => void
  /** the timeout fired: tear it down and fail with `timeoutError` */
  readonly timedOut: () => void
}

const realClock = Clock.make().constructor

/** The error of a handshake that did not finish in time. @internal */
export const timeoutError = (
  side: "client" | "server",
  peer: string | undefined,
  timeout: Duration.Duration
): SslError.HandshakeError =>
  new SslError.HandshakeError({
    reason: "Timeout",
    side,
    peer,
    cause: `no handshake within ${Duration.format(timeout)}`
  })

/**
 * Waits for a handshake that `start` begins; `start` calls `finish` once with the outcome. The
 * timeout follows the fiber's Clock: a timer inside the wait on the real clock, and the
 * Clock-driven `Effect.timeoutFail` otherwise (a TestClock, say), so tests can move time.
 *
 * @internal
 */
export const awaitHandshake = <A>(
  timeout: Duration.Duration,
  side: "client" | "server",
  peer: string | undefined,
  start: (finish: (outcome: Effect.Effect<A, SslError.SslError>) => void) => Running
): Effect.Effect<A, SslError.SslError> =>
  Effect.withFiberRuntime((fiber) => {
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    const millis = Duration.toMillis(timeout)
    const timer = clock.constructor === realClock && Number.isFinite(millis)
    const wait = Effect.interruptible(Effect.async<A, SslError.SslError>((resume) => {
      let handle: ReturnType<typeof setTimeout> | undefined
      let finished = false
      const running = start((outcome) => {
        finished = true
        if (handle !== undefined) clearTimeout(handle)
        resume(outcome)
      })
      if (timer && !finished) handle = setTimeout(running.timedOut, millis)
      return Effect.sync(() => {
        if (handle !== undefined) clearTimeout(handle)
        running.cancel()
      })
    }))
    return timer
      ? wait
      : Effect.timeoutFail(wait, { duration: timeout, onTimeout: () => timeoutError(side, peer, timeout) })
  })

/**
 * `Effect.acquireRelease` for connections: the release is added to the scope as it is. Effect's
 * own captures the acquiring fiber's FiberRefs and patches them back in around the release (a
 * diff and a patch of every FiberRef, per connection); these releases read none of them.
 *
 * @internal
 */
export const acquireConnection = <A, E, R>(
  acquire: Effect.Effect<A, E, R>,
  release: (a: A) => Effect.Effect<void>
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.uninterruptible(
    Effect.flatMap(acquire, (a) =>
      // (a bound function: smaller than a closure over `a` and `release`, and kept as long as `a`)
      Effect.flatMap(Scope.Scope, (scope) => Effect.as(Scope.addFinalizerExit(scope, release.bind(undefined, a)), a)))
  )

/**
 * `acquireConnection(awaitHandshake(timeout, side, peer, start), release)` as one step, for a
 * handshake whose wait is all its acquisition takes (a client's). One uninterruptible region with
 * the wait as its only interruptible part, whose own match tears the handshake down when the wait
 * is interrupted and adds the release to the scope when it succeeds. Effect.async's canceller
 * would wrap the wait in a region and a match of their own (and run the teardown as an effect of
 * its own), all of which an interrupted connect unwinds before its interrupter resumes. The
 * Clock-driven timeout (a TestClock) keeps `awaitHandshake`.
 *
 * @internal
 */
export const acquireHandshake = <A>(
  timeout: Duration.Duration,
  side: "client" | "server",
  peer: string | undefined,
  start: (finish: (outcome: Effect.Effect<A, SslError.SslError>) => void) => Running,
  release: (a: A) => Effect.Effect<void>
): Effect.Effect<A, SslError.SslError, Scope.Scope> =>
  Effect.withFiberRuntime((fiber) => {
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    const millis = Duration.toMillis(timeout)
    if (clock.constructor !== realClock || !Number.isFinite(millis)) {
      return acquireConnection(awaitHandshake(timeout, side, peer, start), release)
    }
    // what the wait started: the match below stops it if the wait is interrupted
    let running: Running | undefined
    let handle: ReturnType<typeof setTimeout> | undefined
    const wait = Effect.async<A, SslError.SslError>((resume) => {
      let finished = false
      running = start((outcome) => {
        finished = true
        if (handle !== undefined) clearTimeout(handle)
        resume(outcome)
      })
      if (!finished) handle = setTimeout(running.timedOut, millis)
    })
    return Effect.uninterruptible(Effect.matchCauseEffect(Effect.interruptible(wait), {
      onFailure: (cause) => {
        // (as Effect.async's canceller: only when the wait itself was interrupted; the teardown
        // first, so that the socket goes before anything else runs)
        if (running !== undefined && Cause.isInterruptedOnly(cause)) {
          running.cancel()
          if (handle !== undefined) clearTimeout(handle)
        }
        return Effect.failCause(cause)
      },
      onSuccess: (a) =>
        Effect.flatMap(Scope.Scope, (scope) => Effect.as(Scope.addFinalizerExit(scope, release.bind(undefined, a)), a))
    }))
  })
