/**
 * Each built package must load as other code consumes it: through `import` and through `require`,
 * resolved by Node from the package's `exports` map (not through vitest's source aliases), with the
 * same named exports both ways and type declarations for both. Needs `pnpm build` first (the root
 * `test` script runs it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'test');

interface Manifest {
  name: string;
  exports: Record<
    string,
    { import: { types: string; default: string }; require: { types: string; default: string } }
  >;
}

const packages = readdirSync(join(root, 'packages')).map((dir) => {
  const manifest = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as Manifest;
  return { dir: join(root, 'packages', dir), manifest };
});

/** Runs a script with Node from the test workspace package, where the packages are dependencies. */
function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: testDir, encoding: 'utf8' });
}

const listExports = (name: string, how: 'import' | 'require'): string[] => {
  const load =
    how === 'import' ? `await import(${JSON.stringify(name)})` : `require(${JSON.stringify(name)})`;
  const script = `const m = ${load}; console.log(JSON.stringify(Object.keys(m).filter((k) => k !== 'default' && k !== 'module.exports').sort()));`;
  const flag = how === 'import' ? '--input-type=module' : '--input-type=commonjs';
  return JSON.parse(node([flag, '-e', script])) as string[];
};

describe.each(packages)('$manifest.name', ({ dir, manifest }) => {
  it('is a dependency of the test workspace, so Node resolves it by name', () => {
    const testManifest = JSON.parse(readFileSync(join(testDir, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(testManifest.dependencies[manifest.name]).toBe('workspace:*');
  });

  it('ships ESM, CJS and declarations for both, as its exports map says', () => {
    const main = manifest.exports['.'];
    expect(main).toBeDefined();
    for (const file of [
      main!.import.default,
      main!.import.types,
      main!.require.default,
      main!.require.types,
    ]) {
      expect(existsSync(join(dir, file)), `${manifest.name}: ${file} (run pnpm build)`).toBe(true);
    }
  });

  it('has the same named exports through import and require', () => {
    const viaImport = listExports(manifest.name, 'import');
    const viaRequire = listExports(manifest.name, 'require');
    expect(viaImport.length).toBeGreaterThan(0);
    expect(viaRequire).toEqual(viaImport);
  });
});

describe('@vpci/rangeset bundles work, not only load', () => {
  const script = (load: string): string => `
    const { RangeSet, InvalidArgumentError } = ${load};
    const set = new RangeSet({ name: 'iomem', hex: true });
    set.addRange(0xa0, 0xbf); set.addRange(0xfee00, 0xfee00);
    let threw = false; try { set.addRange(5, 1); } catch (e) { threw = e instanceof InvalidArgumentError && e instanceof RangeError; }
    console.log(JSON.stringify({ text: set.toString(), threw }));`;

  it.each([
    ['import', '--input-type=module', "await import('@vpci/rangeset')"],
    ['require', '--input-type=commonjs', "require('@vpci/rangeset')"],
  ])('through %s', (_how, flag, load) => {
    expect(JSON.parse(node([flag, '-e', script(load)]))).toEqual({
      text: 'iomem      { a0-bf, fee00 }',
      threw: true,
    });
  });
});
