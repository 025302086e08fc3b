/**
 * The timed part of one run of a figure: wall-clock time, and the CPU time this process (the
 * client, or both ends in one process) and the server process spent in it. A figure function
 * calls `start` once its setup is done and `stop` once the work is; the harness turns the three
 * numbers into a rate and CPU per unit of work.
 */
import { type Child, ownCpuMicros } from "./common.js"

export class Meter {
  private t0 = 0
  private t1 = 0
  private client0 = 0
  private client1 = 0
  private server0 = 0
  private server1 = 0
  private compacts0 = 0
  private compacts1 = 0
  private started = false
  private stopped = false

  /** `server`: the process at the other end, when it is one (asked for its CPU time over IPC). */
  constructor(readonly server?: Child) {}

  /** Marks the start: resolves once the clocks are read (the server's first, ours last). */
  async start(): Promise<void> {
    if (this.server !== undefined) {
      const usage = await this.server.usage()
      this.server0 = usage.cpuMicros
      this.compacts0 = usage.markCompacts
    }
    this.client0 = ownCpuMicros()
    this.t0 = performance.now()
    this.started = true
  }

  /** Marks the end: our clocks at once, then the server's. */
  async stop(): Promise<void> {
    this.t1 = performance.now()
    this.client1 = ownCpuMicros()
    this.stopped = true
    if (this.server !== undefined) {
      const usage = await this.server.usage()
      this.server1 = usage.cpuMicros
      this.compacts1 = usage.markCompacts
    }
  }

  private check() {
    if (!this.started || !this.stopped) throw new Error("bench: a figure did not start and stop its meter")
  }

  /** Milliseconds between start and stop. */
  get ms(): number {
    this.check()
    return this.t1 - this.t0
  }

  /** This process's CPU time between start and stop, in microseconds. */
  get clientMicros(): number {
    this.check()
    return this.client1 - this.client0
  }

  /** The server process's CPU time between start and stop, in microseconds (undefined without one). */
  get serverMicros(): number | undefined {
    this.check()
    return this.server === undefined ? undefined : this.server1 - this.server0
  }

  /** The server process's mark-compacts between start and stop (undefined without one). */
  get serverMarkCompacts(): number | undefined {
    this.check()
    return this.server === undefined ? undefined : this.compacts1 - this.compacts0
  }
}

/**
 * One run of one subject: the figure's value, CPU milliseconds per unit of work by process, and
 * the server process's mark-compacts in the run (where there is one).
 */
export interface Sample {
  readonly value: number
  readonly cpu: Readonly<Record<string, number>>
  readonly serverMarkCompacts?: number
}

/**
 * A rate from a meter: `units` per second, scaled by `scale` (10^-6 for MB/s from bytes), and CPU
 * per `cpuUnits` (handshakes, MiB) for this process (named `clientName`) and the server process.
 */
export const rate = (
  meter: Meter,
  units: number,
  options: { readonly scale?: number; readonly cpuUnits?: number; readonly clientName?: string } = {}
): Sample => {
  const cpuUnits = options.cpuUnits ?? units
  const cpu: Record<string, number> = { [options.clientName ?? "client"]: meter.clientMicros / 1000 / cpuUnits }
  const server = meter.serverMicros
  if (server !== undefined) cpu["server"] = server / 1000 / cpuUnits
  const value = (units * (options.scale ?? 1)) / (meter.ms / 1000)
  const serverMarkCompacts = meter.serverMarkCompacts
  return serverMarkCompacts === undefined ? { value, cpu } : { value, cpu, serverMarkCompacts }
}
