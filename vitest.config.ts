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
    // A campaign (FC_RUNS set: test/support/fast-check-setup.ts) runs the properties many times
    // their defaults, which the suite's per-test bound would cut short (check-indexes at FC_RUNS=800
    // takes over a minute on a loaded machine): it gets half an hour per test instead.
    testTimeout: process.env.FC_RUNS === undefined || process.env.FC_RUNS === '' ? 60_000 : 1_800_000,
  },
});
