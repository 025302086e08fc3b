/**
 * TLS secrets in the SSLKEYLOGFILE format (`SslContext.setKeyLog`), for decrypting captures.
 *
 * @internal
 */
import type { SslContext as SslContextT } from "@effect-ssl/core"
import * as Fs from "node:fs"

/** A listener for a TLS socket's 'keylog' events. @internal */
export const keyLogger = (keyLog: SslContextT.KeyLog) => (line: Buffer): void => {
  try {
    if (typeof keyLog === "function") keyLog(line.toString("latin1").trimEnd())
    else Fs.appendFileSync(keyLog.file, line, { mode: 0o600 })
  } catch {
    // A broken key log must not break the connection it is observing.
  }
}
