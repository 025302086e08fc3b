/**
 * Spans and metrics of connections, through Effect's own Tracer and Metric: what `Ssl.connect`,
 * `Ssl.accept`, `Ssl.wrap` and `Ssl.serve` record around each handshake.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type { Connection, SessionInfo } from "../Ssl.js"
import type { SslError } from "../SslError.js"

/** @internal */
export type Operation = "connect" | "accept" | "wrap"

/** @internal */
export type Side = "client" | "server"

/** @internal */
export const spanNames: Record<Operation, string> = {
  connect: "effect-ssl.connect",
  accept: "effect-ssl.accept",
  wrap: "effect-ssl.wrap"
}

/** @internal */
export const handshakeDuration = Metric.histogram(
  "effect_ssl_handshake_duration_ms",
  // from a loopback handshake (a few ms) to the default handshake timeout (30 s)
  MetricBoundaries.fromIterable([1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]),
  "TLS handshakes, in milliseconds (connect: from the start of the TCP connect; accept: from the handshake's beginning); labels operation, side, outcome"
)

/** @internal */
export const handshakes = Metric.counter("effect_ssl_handshakes_total", {
  description:
    "TLS handshakes by outcome (success, failure, interrupted); labels operation, side, outcome, and on failure error (the SslError's tag) and reason",
  incremental: true
})

/** @internal */
export const openConnections = Metric.gauge("effect_ssl_open_connections", {
  description: "TLS connections established and not yet closed (their scope has not ended); labels operation, side"
})

/** @internal */
export const bytesRead = Metric.counter("effect_ssl_bytes_read_total", {
  description: "Application bytes read from TLS connections, counted when each connection ends",
  incremental: true
})

/** @internal */
export const bytesWritten = Metric.counter("effect_ssl_bytes_written_total", {
  description: "Application bytes written to TLS connections, counted when each connection ends",
  incremental: true
})

type Outcome = "success" | "failure" | "interrupted"

// Label sets are made once per combination: a handshake only picks one.
const labelCache = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()

const labels = (
  operation: Operation,
  side: Side,
  outcome: Outcome | undefined,
  error?: string,
  reason?: string
): ReadonlyArray<MetricLabel.MetricLabel> => {
  const key = `${operation}|${side}|${outcome}|${error}|${reason}`
  let cached = labelCache.get(key)
  if (cached === undefined) {
    const made = [MetricLabel.make("operation", operation), MetricLabel.make("side", side)]
    if (outcome !== undefined) made.push(MetricLabel.make("outcome", outcome))
    if (error !== undefined) made.push(MetricLabel.make("error", error))
    if (reason !== undefined) made.push(MetricLabel.make("reason", reason))
    labelCache.set(key, cached = made)
  }
  return cached
}

/** The label sets of one operation and side that name no error. */
interface LabelSets {
  readonly success: ReadonlyArray<MetricLabel.MetricLabel>
  readonly failure: ReadonlyArray<MetricLabel.MetricLabel>
  readonly interrupted: ReadonlyArray<MetricLabel.MetricLabel>
  /** the open-connections gauge's: no outcome */
  readonly open: ReadonlyArray<MetricLabel.MetricLabel>
}

// Looked up by property rather than through `labels`' string key: building and hashing that key
// took about 3 µs of an interrupted connect (warm, bench figure "interrupt"), a tenth of its unwinding.
const labelSetCache: Record<Operation, Partial<Record<Side, LabelSets>>> = { connect: {}, accept: {}, wrap: {} }

const labelSets = (operation: Operation, side: Side): LabelSets => {
  let sets = labelSetCache[operation][side]
  if (sets === undefined) {
    sets = {
      success: labels(operation, side, "success"),
      failure: labels(operation, side, "failure"),
      interrupted: labels(operation, side, "interrupted"),
      open: labels(operation, side, undefined)
    }
    labelSetCache[operation][side] = sets
  }
  return sets
}

// The labels a program set with Effect.tagMetrics come first, as Metric.update would add them.
const withFiberLabels = (
  fiberLabels: ReadonlyArray<MetricLabel.MetricLabel>,
  ours: ReadonlyArray<MetricLabel.MetricLabel>
): ReadonlyArray<MetricLabel.MetricLabel> => fiberLabels.length === 0 ? ours : [...fiberLabels, ...ours]

// A reason is a label only where it is one of a few literals; elsewhere it is free text (the
// reason of an InvalidArgumentError), which would make a metric series per message.
const literalReasons: ReadonlySet<string> = new Set([
  "CertificateLoadError",
  "PrivateKeyLoadError",
  "ConnectError",
  "ListenError",
  "HandshakeError",
  "VerifyError",
  "IoError"
])

/** The error's reason, where it is one of its class's literals. @internal */
export const reasonOf = (error: SslError): string | undefined =>
  literalReasons.has(error._tag) ? (error as { readonly reason: string }).reason : undefined

const certificateAttributes = (span: Tracer.Span, prefix: "tls.server" | "tls.client", session: SessionInfo) => {
  if (Option.isNone(session.peerCertificate)) return
  const certificate = session.peerCertificate.value
  span.attribute(`${prefix}.subject`, certificate.subject)
  span.attribute(`${prefix}.issuer`, certificate.issuer)
  span.attribute(`${prefix}.not_before`, certificate.validFrom.toISOString())
  span.attribute(`${prefix}.not_after`, certificate.validTo.toISOString())
  // OpenTelemetry's form: upper-case hex without separators.
  span.attribute(`${prefix}.hash.sha256`, certificate.fingerprint256.replaceAll(":", ""))
}

const protocolVersions: Record<SessionInfo["protocol"], string> = {
  "TLSv1": "1.0",
  "TLSv1.1": "1.1",
  "TLSv1.2": "1.2",
  "TLSv1.3": "1.3"
}

// Attribute names follow OpenTelemetry's semantic conventions (tls.*, network.*, server.*,
// error.type) where there is one; the rest are effect_ssl.*.
const sessionAttributes = (span: Tracer.Span, side: Side, session: SessionInfo) => {
  span.attribute("tls.established", true)
  span.attribute("tls.protocol.name", "tls")
  span.attribute("tls.protocol.version", protocolVersions[session.protocol])
  span.attribute("tls.cipher", session.cipher)
  span.attribute("tls.resumed", session.resumed)
  span.attribute("effect_ssl.verified", session.verified)
  if (Option.isSome(session.alpnProtocol)) span.attribute("tls.next_protocol", session.alpnProtocol.value)
  if (Option.isSome(session.servername)) span.attribute("tls.client.server_name", session.servername.value)
  // A connection wrapped over something other than a socket (a pipe) has no addresses.
  if (session.remoteAddress.hostname !== "") {
    span.attribute("network.peer.address", session.remoteAddress.hostname)
    span.attribute("network.peer.port", session.remoteAddress.port)
  }
  if (session.localAddress.hostname !== "") {
    span.attribute("network.local.address", session.localAddress.hostname)
    span.attribute("network.local.port", session.localAddress.port)
  }
  certificateAttributes(span, side === "client" ? "tls.server" : "tls.client", session)
}

const errorAttributes = (span: Tracer.Span, error: SslError) => {
  span.attribute("error.type", error._tag)
  const reason = reasonOf(error)
  if (reason !== undefined) span.attribute("effect_ssl.error.reason", reason)
  const { code, peer } = error as { readonly code?: string | undefined; readonly peer?: string | undefined }
  if (code !== undefined) span.attribute("effect_ssl.error.code", code)
  if (peer !== undefined) span.attribute("effect_ssl.peer", peer)
}

/** What a handshake's span starts with: the peer asked for, where it is known before. @internal */
export interface Target {
  /** "host:port" (connect) or the server name to verify (wrap) */
  readonly peer?: string | undefined
  readonly serverAddress?: string | undefined
  readonly serverPort?: number | undefined
}

const initialAttributes = (made: (() => Target) | undefined): Record<string, unknown> | undefined => {
  if (made === undefined) return undefined
  const target = made()
  const attributes: Record<string, unknown> = {}
  if (target.peer !== undefined) attributes["effect_ssl.peer"] = target.peer
  if (target.serverAddress !== undefined) attributes["server.address"] = target.serverAddress
  if (target.serverPort !== undefined) attributes["server.port"] = target.serverPort
  return attributes
}

const millisSince = (start: bigint, now: bigint): number => Number(now - start) / 1e6

/**
 * Where a handshake effect says when its handshake began, if that was before the effect runs:
 * the node listener begins an accepted connection's handshake as it arrives (packages/node,
 * service.ts, which sets it under the same registered symbol), in the default Clock's nanoseconds.
 *
 * @internal
 */
export const handshakeBegunAt: unique symbol = Symbol.for("@effect-ssl/core/handshakeBegunAt") as never

const defaultClock: Clock.Clock = Context.get(DefaultServices.liveServices, Clock.Clock)

// Effect's default tracer, in force while no tracer is installed, keeps its spans for nobody:
// under it a handshake makes no span (its attributes would be the most of what this costs) and
// records its metrics only.
const defaultTracer: Tracer.Tracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * Runs a handshake (`connect`, an accepted connection's TLS, `wrap`) in its span, records its
 * duration and outcome, and counts the connection as open until the scope it lives in ends.
 *
 * @internal
 */
export const observe = <R>(
  operation: Operation,
  side: Side,
  /** what the span names at its start; made only when there is a span */
  target: (() => Target) | undefined,
  handshake: Effect.Effect<Connection, SslError, R>
): Effect.Effect<Connection, SslError, R | Scope.Scope> =>
  Effect.withFiberRuntime((fiber) => {
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    const begunAt = (handshake as { readonly [handshakeBegunAt]?: bigint })[handshakeBegunAt]
    // (a time of the default clock means nothing to another one: a TestClock's handshake starts here)
    const start = begunAt !== undefined && clock === defaultClock ? begunAt : clock.unsafeCurrentTimeNanos()
    const sets = labelSets(operation, side)
    // The outcome is recorded in the handlers of one match on this fiber (`fiber` is the fiber
    // they run on): no step of their own between the handshake's end and its caller, which an
    // interrupted connect's unwinding would pay before the interrupter resumes.
    const measured = (span: Tracer.Span | undefined) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.matchCauseEffect(restore(span === undefined ? handshake : Effect.withParentSpan(handshake, span)), {
          onFailure: (cause) => {
            const fiberLabels = fiber.getFiberRef(FiberRef.currentMetricLabels)
            failed(operation, side, sets, span, millisSince(start, clock.unsafeCurrentTimeNanos()), cause, fiberLabels)
            return Effect.failCause(cause)
          },
          onSuccess: (connection) => {
            const fiberLabels = fiber.getFiberRef(FiberRef.currentMetricLabels)
            const elapsed = millisSince(start, clock.unsafeCurrentTimeNanos())
            return established(side, sets, span, elapsed, connection, fiberLabels)
          }
        })
      )
    if (fiber.currentTracer === defaultTracer) return measured(undefined)
    return Effect.useSpan(
      spanNames[operation],
      {
        kind: side,
        attributes: initialAttributes(target),
        // The stack would show this module, not the caller: not worth an Error per handshake.
        captureStackTrace: false
      },
      measured
    )
  })

// The gauge's decrement for a label set, made once per label set (they are cached, see `labels`)
// rather than once per connection: as a plain function for connections that count their own
// close (`countsItsClose`), and as a scope finalizer for the others (`Scope.addFinalizer` would
// wrap an effect in a closure of its own for every connection).
interface Decrement {
  readonly now: () => void
  readonly finalizer: Scope.Scope.Finalizer
}
const decrements = new WeakMap<ReadonlyArray<MetricLabel.MetricLabel>, Decrement>()
const decrementOf = (open: ReadonlyArray<MetricLabel.MetricLabel>): Decrement => {
  let decrement = decrements.get(open)
  if (decrement === undefined) {
    const now = () => openConnections.unsafeModify(-1, open)
    const effect = Effect.sync(now)
    decrement = { now, finalizer: () => effect }
    decrements.set(open, decrement)
  }
  return decrement
}

/**
 * Where a connection that releases itself in a scope finalizer of its own takes over the
 * open-connections gauge's decrement: it calls the function it is given when that finalizer runs
 * (at once, if it has run already). The node adapter's connections do (packages/node,
 * connection.ts, under the same registered symbol), so that a connection's scope holds one
 * finalizer rather than two: each is an Effect step of the scope's close, run cold beside the
 * sockets. Connections without it get a finalizer of the gauge's own.
 *
 * @internal
 */
export const countsItsClose: unique symbol = Symbol.for("@effect-ssl/core/countsItsClose") as never

/** Records a handshake that failed or was interrupted. */
const failed = (
  operation: Operation,
  side: Side,
  sets: LabelSets,
  span: Tracer.Span | undefined,
  elapsed: number,
  cause: Cause.Cause<SslError>,
  fiberLabels: ReadonlyArray<MetricLabel.MetricLabel>
): void => {
  // (a cause of interruptions only has no failure: one walk of the cause for an interrupt)
  if (Cause.isInterruptedOnly(cause)) {
    const interrupted = withFiberLabels(fiberLabels, sets.interrupted)
    handshakeDuration.unsafeUpdate(elapsed, interrupted)
    handshakes.unsafeUpdate(1, interrupted)
    return
  }
  handshakeDuration.unsafeUpdate(elapsed, withFiberLabels(fiberLabels, sets.failure))
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) {
    handshakes.unsafeUpdate(1, withFiberLabels(fiberLabels, sets.failure))
    return
  }
  const error = failure.value
  if (span !== undefined) errorAttributes(span, error)
  handshakes.unsafeUpdate(
    1,
    withFiberLabels(fiberLabels, labels(operation, side, "failure", error._tag, reasonOf(error)))
  )
}

/** Records a handshake that succeeded and counts its connection open until its scope ends. */
const established = (
  side: Side,
  sets: LabelSets,
  span: Tracer.Span | undefined,
  elapsed: number,
  connection: Connection,
  fiberLabels: ReadonlyArray<MetricLabel.MetricLabel>
): Effect.Effect<Connection, never, Scope.Scope> => {
  const success = withFiberLabels(fiberLabels, sets.success)
  handshakeDuration.unsafeUpdate(elapsed, success)
  handshakes.unsafeUpdate(1, success)
  const open = withFiberLabels(fiberLabels, sets.open)
  openConnections.unsafeModify(1, open)
  const decrement = decrementOf(open)
  const countClose = (connection as { readonly [countsItsClose]?: (decrement: () => void) => void })[countsItsClose]
  // Else the scope's own finalizer, not Effect.addFinalizer: that one diffs and restores the
  // fiber's FiberRefs around it, which costs more than the rest of this module.
  let counted: Effect.Effect<Connection, never, Scope.Scope>
  if (countClose !== undefined) {
    countClose.call(connection, decrement.now)
    counted = Effect.succeed(connection)
  } else {
    counted = Effect.scopeWith((scope) => Effect.as(Scope.addFinalizerExit(scope, decrement.finalizer), connection))
  }
  if (span === undefined) return counted
  return Effect.flatMap(connection.session, (session) => {
    sessionAttributes(span, side, session)
    return counted
  })
}

/**
 * Adds a connection's application bytes to the byte counters; a platform adapter calls it once
 * per connection, when the connection ends.
 *
 * @internal
 */
export const recordBytes = (read: number, written: number): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => {
    const fiberLabels = fiber.getFiberRef(FiberRef.currentMetricLabels)
    if (read > 0) bytesRead.unsafeUpdate(read, fiberLabels)
    if (written > 0) bytesWritten.unsafeUpdate(written, fiberLabels)
    return Effect.void
  })
