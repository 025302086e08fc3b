// What a user writes after `npm install @effect-ssl/core @effect-ssl/node @effect-ssl/sha1`:
// plain JavaScript run by plain node, against the installed packages. Install.test.ts copies
// this file into a temporary project outside the workspace and runs it there.
//
//   node roundtrip.mjs PORT FILE
//
// connects to localhost:PORT (an `openssl s_server -rev`, which sends each line back reversed),
// verifying it against root-ca.pem, sends a line, reads the answer, hashes FILE with Sha1 and
// prints one JSON object.
import { Ssl, SslContext } from "@effect-ssl/core"
import { NodeSsl } from "@effect-ssl/node"
import { Sha1 } from "@effect-ssl/sha1"
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Effect, Option } from "effect"

const [port, file] = process.argv.slice(2)

const program = Effect.gen(function*() {
  const context = yield* SslContext.makeClient()
  yield* SslContext.loadVerifyRootCertificates(context, "root-ca.pem")
  const conn = yield* Ssl.connect("localhost", Number(port), context)
  const session = yield* conn.session
  yield* conn.output.write("effect-ssl, installed\n")
  const answer = yield* conn.input.readLine
  const fs = yield* FileSystem.FileSystem
  const sha1 = yield* Sha1.sha1(fs.stream(file))
  return {
    verified: session.verified,
    protocol: session.protocol,
    answer: Option.getOrNull(answer),
    sha1
  }
})

const result = await Effect.runPromise(
  program.pipe(Effect.scoped, Effect.provide([NodeSsl.layer, NodeContext.layer]))
)
console.log(JSON.stringify(result))
