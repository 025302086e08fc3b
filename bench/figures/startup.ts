/**
 * Start-up of the published `effect-ssl` command: the one-file bundle that
 * packages/cli/scripts/bundle.mjs makes (what `npm install @effect-ssl/cli` puts on the PATH),
 * timed from spawn to exit for `--help`, against `node -e 0` (Node's own start-up) in the same
 * run. Milliseconds; one run's figure is the median of `samples` starts.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { median } from "../lib/stats.js"

/** The bundle; bench/build.mjs makes it before `pnpm bench` runs. */
export const cliBundle: string = fileURLToPath(new URL("../../packages/cli/dist/effect-ssl.js", import.meta.url))

const timeOnce = (args: ReadonlyArray<string>): Promise<number> =>
  new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn(process.execPath, args, { stdio: "ignore" })
    child.on("error", reject)
    child.on("close", (code) => {
      const ms = performance.now() - start
      if (code === 0) resolve(ms)
      else reject(new Error(`node ${args.join(" ")} exited with ${code}`))
    })
  })

const timeMedian = async (args: ReadonlyArray<string>, samples: number): Promise<number> => {
  const times: Array<number> = []
  for (let i = 0; i < samples; i++) times.push(await timeOnce(args))
  return median(times)
}

export const cliHelp = (samples: number): Promise<number> => {
  if (!existsSync(cliBundle)) {
    return Promise.reject(new Error(`${cliBundle} is missing: run node bench/build.mjs (pnpm bench does)`))
  }
  return timeMedian([cliBundle, "--help"], samples)
}

export const nodeNothing = (samples: number): Promise<number> => timeMedian(["-e", "0"], samples)
