/**
 * The wait for a TLS handshake: one `Effect.async` step, the only interruptible part of its
 * region, with the handshake timeout as a timer beside it rather than a race of fibers around it.
 *
 * @internal
 */
import { SslError } from "@effect-ssl/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import type { TlsConnection } from "./connection.js"

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
 * Waits for a handshake that `start` begins (`start` calls `finish` once with the outcome) and
 * hands what it made to `done`. One uninterruptible region whose only interruptible part is a
 * bare `Effect.async`: its own match tears the handshake down when the wait is interrupted, the
 * socket first (Effect.async's canceller would wrap the wait in a region and a match of their own,
 * all of which an interrupted connect unwinds before its interrupter resumes), and runs `done` in
 * the region, so that a connection is never made and then lost. When `timeout` passes first the
 * handshake's `timedOut` ends it: a timer on the real clock; on another Clock (a TestClock) a
 * fiber sleeping on it, so that tests can move time.
 *
 * @internal
 */
export const handshake = <A, B, R>(
  timeout: Duration.Duration,
  start: (finish: (outcome: Effect.Effect<A, SslError.SslError>) => void) => Running,
  /** (given the fiber too: what it needs of the fiber's context is read without a step of its own) */
  done: (a: A, fiber: Fiber.RuntimeFiber<unknown, unknown>) => Effect.Effect<B, never, R>
): Effect.Effect<B, SslError.SslError, R> =>
  Effect.withFiberRuntime((fiber) => {
    const millis = Duration.toMillis(timeout)
    const timed = Number.isFinite(millis)
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    const onClock = timed && clock.constructor !== realClock
    // what the wait started and its timer: the match below stops both if the wait is interrupted
    let running: Running | undefined
    let finished = false
    // the TestClock's sleeper woke before the wait began (a zero timeout, the fiber having yielded
    // between forking it and the wait): the wait times out as soon as it has started
    let expired = false
    let handle: ReturnType<typeof setTimeout> | undefined
    let sleeper: Fiber.RuntimeFiber<void> | undefined
    const stopTimer = () => {
      if (handle !== undefined) clearTimeout(handle)
      else if (sleeper !== undefined) sleeper.unsafeInterruptAsFork(fiber.id())
    }
    const wait = Effect.async<A, SslError.SslError>((resume) => {
      running = start((outcome) => {
        finished = true
        stopTimer()
        resume(outcome)
      })
      if (finished) return
      if (expired) running.timedOut()
      else if (timed && !onClock) handle = setTimeout(running.timedOut, millis)
    })
    const waited = Effect.matchCauseEffect(Effect.interruptible(wait), {
      onFailure: (cause) => {
        // (as Effect.async's canceller: only when the wait itself was interrupted, here also
        // after `finish` if the interruption came before the fiber took the outcome)
        if (Cause.isInterruptedOnly(cause)) {
          running?.cancel()
          stopTimer()
        }
        return Effect.failCause(cause)
      },
      onSuccess: (a) => done(a, fiber)
    })
    if (!onClock) return Effect.uninterruptible(waited)
    // (its `finished` check: the sleeper's interruption is a message, which may come after the
    // clock has woken it)
    const timer = Effect.interruptible(Effect.zipRight(
      clock.sleep(timeout),
      Effect.sync(() => {
        if (finished) return
        if (running === undefined) expired = true
        else running.timedOut()
      })
    ))
    return Effect.uninterruptible(Effect.flatMap(Effect.fork(timer), (forked) => {
      sleeper = forked
      return waited
    }))
  })

const release = (connection: TlsConnection) => connection.release

/**
 * The `done` of a handshake whose connection belongs to the scope: its release is added to the
 * scope as it is. `Effect.acquireRelease`'s own captures the acquiring fiber's FiberRefs and
 * patches them back in around the release (a diff and a patch of every FiberRef, per
 * connection); this release reads none of them. The scope is read from the fiber's context
 * (`Effect.flatMap(Scope.Scope, …)` would take three steps more, each run cold beside the sockets).
 *
 * @internal
 */
export const releasedWithScope = (
  connection: TlsConnection,
  fiber: Fiber.RuntimeFiber<unknown, unknown>
): Effect.Effect<TlsConnection, never, Scope.Scope> => {
  const scope = Context.get(fiber.currentContext as Context.Context<Scope.Scope>, Scope.Scope)
  // (a bound function: smaller than a closure over `connection`, and kept as long as it)
  return Effect.as(Scope.addFinalizerExit(scope, release.bind(undefined, connection)), connection)
}
