/**
 * Node 20 answers an ALPN offer that shares nothing with the server's list with a fatal
 * `no_application_protocol` alert (nodejs/node#44031; an ALPNCallback that returns nothing does
 * the same), while a server socket that has no ALPN list continues without ALPN. A server that
 * allows no match (Racket's `allow-no-match?`, our default) therefore reads the client's offer
 * before OpenSSL does and gives the connection its ALPN list only when something overlaps.
 *
 * @internal
 */
import type * as Net from "node:net"
import type * as NodeStream from "node:stream"
import { parseClientHelloAlpn } from "./clientHello.js"

/** Whether a server that accepts `accepted` should set its list for a client that offered `offered`. */
export const shouldOfferAlpn = (accepted: ReadonlyArray<string>, offered: ReadonlyArray<string> | undefined): boolean =>
  offered === undefined || offered.some((protocol) => accepted.includes(protocol))

/**
 * Gathers the ClientHello from chunks as they come, parsing again only once enough has come to
 * finish it; `add` says when the offer is known.
 */
class OfferReader {
  private chunks: Array<Buffer> = []
  private length = 0
  // A peer that trickles its hello is parsed again only once enough has come.
  private atLeast = 1

  /** Adds a chunk; the offer once the hello is complete ("none": none can be read). */
  add(chunk: Buffer): ReadonlyArray<string> | "none" | "more" {
    this.chunks.push(chunk)
    this.length += chunk.length
    if (this.length < this.atLeast) return "more"
    const seen = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.length)
    this.chunks = [seen]
    const parsed = parseClientHelloAlpn(seen)
    if (parsed._tag === "NeedMore") {
      this.atLeast = parsed.atLeast
      return "more"
    }
    return parsed._tag === "Offered" && parsed.protocols !== undefined ? parsed.protocols : "none"
  }

  /** Everything read so far, in one piece. */
  bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length)
  }
}

/**
 * TLS through a JS stream: watches the offer as it passes to TLS. The listener is put in front of
 * node:tls's own on the transport, so it sees each chunk before TLS does, and the list is set (or
 * not) before TLS takes the chunk that completes the ClientHello. Nothing is taken from the
 * stream, and node:tls's own listeners see its errors and its end. Returns a function that stops
 * watching.
 */
export const watchAlpnOffer = (
  raw: NodeStream.Duplex,
  decide: (offered: ReadonlyArray<string> | undefined) => void
): () => void => {
  const reader = new OfferReader()
  const stop = () => {
    raw.off("data", onData)
  }
  const onData = (chunk: Buffer) => {
    const offer = reader.add(chunk)
    if (offer === "more") return
    stop()
    decide(offer === "none" ? undefined : offer)
  }
  raw.prependListener("data", onData)
  return stop
}

/**
 * TLS on the socket's native handle: node:tls reads the socket in C++, so the offer is read
 * ahead, in JS, and put back (a TLS socket made over a socket with buffered bytes hands them to
 * OpenSSL first). `decide` runs once the hello is complete or unreadable, with the socket paused
 * and the bytes back in it. Returns a function that stops reading.
 */
export const readAlpnOffer = (
  socket: Net.Socket,
  decide: (offered: ReadonlyArray<string> | undefined) => void
): () => void => {
  const reader = new OfferReader()
  const stop = () => {
    socket.off("data", onData)
  }
  const onData = (chunk: Buffer) => {
    const offer = reader.add(chunk)
    if (offer === "more") return
    stop()
    socket.pause()
    socket.unshift(reader.bytes())
    decide(offer === "none" ? undefined : offer)
  }
  socket.on("data", onData)
  return stop
}

/** ALPN's wire format, as node:tls builds it from ALPNProtocols: each name after its length. */
export const alpnWire = (protocols: ReadonlyArray<string>): Buffer =>
  Buffer.concat(protocols.flatMap((protocol) => {
    const name = Buffer.from(protocol, "utf8")
    return [Buffer.from([name.length]), name]
  }))
