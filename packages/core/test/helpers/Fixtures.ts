/**
 * The committed TLS fixtures (../fixtures, written by generate.sh): where they are, for every
 * package's tests.
 */
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"

/** The fixtures folder, with a trailing slash (the working directory of spawned `openssl` peers). */
export const fixturesDir: string = fileURLToPath(new URL("../fixtures/", import.meta.url))

/** The absolute path of the fixture `name` (e.g. "server-chain.pem"). */
export const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

/** The text of the fixture `name`. */
export const readFixture = (name: string): string => Fs.readFileSync(fixture(name), "utf8")
