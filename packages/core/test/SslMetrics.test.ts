import { SslMetrics } from "@effect-ssl/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

describe("SslMetrics.recordBytes", () => {
  it.effect("adds a connection's totals to the byte counters, with the labels the program set", () =>
    Effect.gen(function*() {
      const read = Metric.value(Metric.tagged(SslMetrics.bytesRead, "connection", "a"))
      const written = Metric.value(Metric.tagged(SslMetrics.bytesWritten, "connection", "a"))
      const record = (r: number, w: number) => Effect.tagMetrics(SslMetrics.recordBytes(r, w), "connection", "a")
      yield* record(1200, 34)
      yield* record(0, 66)
      expect((yield* read).count).toBe(1200)
      expect((yield* written).count).toBe(100)
      // unlabelled, the same counters with other series
      yield* SslMetrics.recordBytes(5, 5)
      expect((yield* read).count).toBe(1200)
    }))
})
