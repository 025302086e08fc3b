/**
 * The bench's server process (or a floor's) for the floors' scripts: spawned with V8's GC trace
 * when asked, its ports (the first line of JSON it prints), its collections as the trace reports
 * them, and its CPU time from /proc (10 ms ticks, enough over seconds).
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"

/**
 * Starts `node [nodeFlags] [--trace-gc-nvp] script…` from bench/. `gc` counts what the trace
 * reports (with `traceGc`) since the start or the last `resetGc()`.
 */
export const startServer = (script, { nodeFlags = [], traceGc = false } = {}) => {
  const child = spawn(process.execPath, [...nodeFlags, ...(traceGc ? ["--trace-gc-nvp"] : []), ...script], {
    stdio: ["ignore", "pipe", "inherit", "ipc"]
  })
  const gc = { scavenges: 0, markCompacts: 0, allocated: 0 }
  // The first line of JSON is the ports; V8's trace lines come before and after it.
  let pending = ""
  const ports = new Promise((resolve) => {
    let found = false
    child.stdout.on("data", (data) => {
      const lines = (pending + String(data)).split("\n")
      pending = lines.pop()
      for (const line of lines) {
        if (!found && line.startsWith("{")) {
          found = true
          resolve(JSON.parse(line))
        }
        if (line.includes("gc=s ")) gc.scavenges++
        if (line.includes("gc=mc ")) gc.markCompacts++
        const allocated = /allocated=(\d+)/.exec(line)
        if (allocated !== null) gc.allocated += Number(allocated[1])
      }
    })
  })
  const resetGc = () => {
    gc.scavenges = 0
    gc.markCompacts = 0
    gc.allocated = 0
  }
  const ticks = (path) => {
    const fields = readFileSync(path, "utf8").split(") ")[1].split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10
  }
  /** The process's CPU time so far, in ms. */
  const cpuMillis = () => ticks(`/proc/${child.pid}/stat`)
  /** The main thread's (JS's) part of it: the rest is V8's and libuv's helper threads. */
  const mainThreadMillis = () => ticks(`/proc/${child.pid}/task/${child.pid}/stat`)
  // Gives the trace of the last collections time to arrive.
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300))
  return { child, ports, gc, resetGc, cpuMillis, mainThreadMillis, settle }
}
