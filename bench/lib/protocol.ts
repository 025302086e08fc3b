/**
 * What bench clients say to the bench server (children/server.ts), the same for effect-ssl and
 * raw node:tls peers.
 *
 *   "h"            the server answers "h" (the one byte of the handshake figures)
 *   "s" + u64 n    the client sends n bytes; the server answers "k" once it has read them all
 *   "d" + u64 n    both send n bytes at once; the server answers "k" once it has read all of the
 *                  client's and written all of its own
 *
 * Then the client closes; the server closes when it reads the end.
 */
export const H = 0x68
export const S = 0x73
export const D = 0x64
export const K = 0x6b

export const byte = (b: number): Buffer => Buffer.from([b])

export const header = (command: number, bytes: number): Buffer => {
  const out = Buffer.alloc(9)
  out[0] = command
  out.writeBigUInt64BE(BigInt(bytes), 1)
  return out
}

/** The ports the server child listens on, printed as its first line of output. */
export interface ServerPorts {
  readonly rsa: number
  readonly ec: number
}
