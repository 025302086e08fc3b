#!/usr/bin/env node
// The workspace's `effect-ssl` (pnpm demo, pnpm effect-ssl …): it runs the TypeScript sources, which
// tsx compiles on load, so a fresh clone needs no build and always runs what is checked out.
// The published package's bin is dist/effect-ssl.js instead (publishConfig.bin), one JavaScript
// bundle made by scripts/bundle.mjs.
import { register } from "tsx/esm/api"

register()
await import("../src/bin.ts")
