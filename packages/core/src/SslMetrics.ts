/**
 * The metrics effect-ssl records, through Effect's own `Metric`: read them with `Metric.value`
 * (or `Metric.snapshot`), or export them with `@effect/opentelemetry` like any other Effect metric.
 *
 * `Ssl.connect`, `Ssl.accept`, `Ssl.wrap` and every connection `Ssl.serve` accepts record the
 * handshake's duration and outcome, and count the connection as open until its scope ends. Each
 * also runs in a span, `effect-ssl.connect`, `effect-ssl.accept` or `effect-ssl.wrap`, whose
 * attributes follow OpenTelemetry's conventions: `tls.protocol.version`, `tls.cipher`,
 * `tls.next_protocol` (ALPN), `tls.resumed`, `tls.client.server_name` (SNI),
 * `tls.server.*` / `tls.client.*` (the peer's certificate: subject, issuer, not_before,
 * not_after, hash.sha256), `network.peer.*`, `network.local.*`, `server.address` and
 * `server.port` (connect), `effect_ssl.verified`, `effect_ssl.peer`; on failure `error.type` (the
 * SslError's tag), `effect_ssl.error.reason` and `effect_ssl.error.code`. With no tracer installed
 * (Effect's default one keeps spans for nobody) no span is made, and a handshake costs only its
 * metrics: a few microseconds.
 *
 * Labels: `operation` ("connect", "accept", "wrap") and `side` ("client", "server") on all the
 * connection metrics; `outcome` ("success", "failure", "interrupted") on the handshake metrics;
 * `error` (the SslError's tag) and `reason` on failed handshakes. Labels set with
 * `Effect.tagMetrics` come along.
 *
 * @since 0.2.0
 */
import type * as Effect from "effect/Effect"
import type * as Metric from "effect/Metric"
import * as Observability from "./internal/observability.js"

/**
 * Handshake durations in milliseconds (for `connect`, from the start of the TCP connect; for
 * `accept`, from the handshake's beginning: as the connection arrives when an accept was waiting
 * for it, else when an accept takes it), by operation, side and outcome.
 *
 * @since 0.2.0
 * @category metrics
 */
export const handshakeDuration: Metric.Metric.Histogram<number> = Observability.handshakeDuration

/**
 * Handshakes by operation, side and outcome, with the error's tag and reason when they failed.
 *
 * @since 0.2.0
 * @category metrics
 */
export const handshakes: Metric.Metric.Counter<number> = Observability.handshakes

/**
 * Connections established and not yet closed, by operation and side.
 *
 * @since 0.2.0
 * @category metrics
 */
export const openConnections: Metric.Metric.Gauge<number> = Observability.openConnections

/**
 * Application bytes read from connections, counted when each connection ends (where the platform
 * adapter reports them; the node adapter counts what Node code reads and writes on a connection's
 * socket too, as node:http does under its HTTP layers).
 *
 * @since 0.2.0
 * @category metrics
 */
export const bytesRead: Metric.Metric.Counter<number> = Observability.bytesRead

/**
 * Application bytes written to connections, counted when each connection ends (where the platform
 * adapter reports them; the node adapter counts what Node code reads and writes on a connection's
 * socket too, as node:http does under its HTTP layers).
 *
 * @since 0.2.0
 * @category metrics
 */
export const bytesWritten: Metric.Metric.Counter<number> = Observability.bytesWritten

/**
 * For platform adapters: adds one connection's totals to `bytesRead` and `bytesWritten`. Called
 * once per connection, as it ends, so that reads and writes themselves record nothing.
 *
 * @since 0.2.0
 * @category adapters
 */
export const recordBytes: (read: number, written: number) => Effect.Effect<void> = Observability.recordBytes
