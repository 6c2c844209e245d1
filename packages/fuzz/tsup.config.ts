// Every package builds the same way (tsup.config.base.ts at the root); this one also builds the
// `vpci-fuzz` executable and its worker thread, which the CLI finds next to itself
// (`import.meta.url`, shimmed in the CommonJS build).
import { defineConfig } from 'tsup';
import base from '../../tsup.config.base';

export default defineConfig({ ...base, entry: ['src/index.ts', 'src/bin.ts', 'src/worker.ts'], shims: true });
