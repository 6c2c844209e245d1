/**
 * FC_RUNS governs every property (test/support/fast-check-setup.ts): a property names its default run
 * count through `runs(n)`, never with its own `numRuns` option, which FC_RUNS could not scale.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from './support/package-readme.js';

/** Every test file of the repository: test/ and each package's src/. */
function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name === 'node_modules' || entry.name === 'dist') return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

it('no property sets its own run count: each asks runs(n), which FC_RUNS scales', () => {
  const files = [...testFiles(join(ROOT, 'test')), ...testFiles(join(ROOT, 'packages'))];
  expect(files.length).toBeGreaterThan(20);
  const offenders = files
    .filter((file) => /\bnumRuns\s*:/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(ROOT, file));
  expect(offenders).toEqual([]);
});
