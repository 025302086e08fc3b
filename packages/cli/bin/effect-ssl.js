#!/usr/bin/env node
// The workspace runs its TypeScript sources directly; tsx compiles them on load.
import { register } from "tsx/esm/api"

register()
await import("../src/bin.ts")
