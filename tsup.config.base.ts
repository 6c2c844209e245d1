import { defineConfig } from 'tsup';

/** How every workspace package builds: ESM and CJS with declarations for both, from src/index.ts. */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  // Members tagged `@internal` (helpers one module of a package lends another) stay out of the
  // declarations, so they are not part of the public API or its report (api/*.api.md).
  dts: { compilerOptions: { stripInternal: true } },
  sourcemap: true,
  clean: true,
  target: 'node20',
});
