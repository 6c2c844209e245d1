import { defineConfig } from 'tsup';

/** How every workspace package builds: ESM and CJS with declarations for both, from src/index.ts. */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
