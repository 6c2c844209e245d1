import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string): string =>
  fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources; test/exports.test.ts checks the built bundles separately.
    alias: {
      // Before '@vpci/rangeset', which would otherwise match it as a prefix.
      '@vpci/rangeset/internal': fileURLToPath(
        new URL('./packages/rangeset/src/_internal/internal.ts', import.meta.url),
      ),
      '@vpci/rangeset': src('rangeset'),
      '@vpci/p2m': src('p2m'),
      '@vpci/vpci': src('vpci'),
      '@vpci/replay': src('replay'),
      '@vpci/firmware': src('firmware'),
      '@vpci/fuzz': src('fuzz'),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    setupFiles: ['test/support/fast-check-setup.ts'],
    testTimeout: 60_000,
  },
});
