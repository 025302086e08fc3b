/**
 * Cold handshakes: the first `count` sequential handshakes of a fresh client process
 * (children/client.ts) against a fresh server process (children/server.ts), both started for
 * this one run, so that V8 has compiled nothing of either yet. Handshakes per second, and CPU per
 * handshake of each process over the same handshakes.
 */
import { type CertKind, spawnScript } from "../lib/common.js"
import type { Sample } from "../lib/meter.js"
import type { ServerPorts } from "../lib/protocol.js"

export const coldHandshakes = async (impl: "effect" | "raw", kind: CertKind, count: number): Promise<Sample> => {
  // Both start at once; the client learns the port when it is told to go.
  const server = spawnScript("children/server.ts", ["--impl", impl], [], { ipc: true })
  const client = spawnScript("children/client.ts", ["--impl", impl, "--count", String(count)], [], { ipc: true })
  try {
    const [line] = await Promise.all([
      server.firstLine,
      client.message((m) => ((m as { ready?: unknown }).ready === true ? true : undefined))
    ])
    const ports = JSON.parse(line) as ServerPorts
    const server0 = await server.cpuMicros()
    const done = client.message((m) => {
      const r = m as { ms?: unknown; cpuMicros?: unknown }
      return typeof r.ms === "number" && typeof r.cpuMicros === "number"
        ? { ms: r.ms, cpuMicros: r.cpuMicros }
        : undefined
    })
    client.send({ go: ports[kind] })
    const result = await done
    const serverMicros = (await server.cpuMicros()) - server0
    const code = await client.exited
    if (code !== 0) throw new Error(`bench cold handshakes (${impl}): client exited with ${code}`)
    return {
      value: count / (result.ms / 1000),
      cpu: { client: result.cpuMicros / 1000 / count, server: serverMicros / 1000 / count }
    }
  } finally {
    await Promise.all([client.kill(), server.kill()])
  }
}
