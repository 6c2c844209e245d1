/**
 * The packages install as npm users get them: each is packed with `pnpm pack` (which turns
 * `workspace:*` into real versions), the five tarballs alone are installed into a scratch project in a
 * temporary directory (`npm install --offline`: they have no other runtime dependency, so no registry
 * is involved), and there every package's example runs with plain Node and prints what its README
 * says. Needs `pnpm build` first (the root `test` script runs it).
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_DIRS, packageFile, ROOT, readmeExample } from './support/package-readme.js';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'vpci-pack-'));
const tarballs = join(scratch, 'tarballs');

/**
 * The environment without what a package manager running this test added (`npm_config_*`,
 * `npm_package_*`, …), so the npm started here sees only its own defaults.
 */
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));

/** Runs pnpm in `cwd`: the one running this test (`pnpm test`), else pnpm 9 through npx, as CI does. */
function pnpm(args: string[], cwd: string): Promise<{ stdout: string }> {
  const pnpmCli = process.env.npm_execpath;
  return pnpmCli?.includes('pnpm')
    ? run(process.execPath, [pnpmCli, ...args], { cwd, env: cleanEnv })
    : run('npx', ['-y', 'pnpm@9', ...args], { cwd, env: cleanEnv });
}

/** The installed (packed) package.json of package `dir`. */
const installedManifest = (dir: string): string =>
  readFileSync(join(scratch, 'node_modules', '@vpci', dir, 'package.json'), 'utf8');

beforeAll(async () => {
  mkdirSync(tarballs);
  await Promise.all(
    PACKAGE_DIRS.map((dir) => pnpm(['pack', '--pack-destination', tarballs], join(ROOT, 'packages', dir))),
  );
  writeFileSync(join(scratch, 'package.json'), '{ "name": "scratch", "private": true, "type": "module" }\n');
  const files = readdirSync(tarballs).map((file) => join(tarballs, file));
  await run(
    'npm',
    ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', ...files],
    { cwd: scratch, env: cleanEnv },
  );
}, 300_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.each(PACKAGE_DIRS)('@vpci/%s, packed and installed', (dir) => {
  it('depends on real versions, not workspace: ones', () => {
    expect(installedManifest(dir)).not.toContain('workspace:');
  });

  it('ships its README and LICENSE', () => {
    for (const file of ['README.md', 'LICENSE']) {
      expect(existsSync(join(scratch, 'node_modules', '@vpci', dir, file)), file).toBe(true);
    }
  });

  it('runs its example with plain Node, printing what the README shows', async () => {
    const example = join(scratch, `${dir}-example.mjs`);
    copyFileSync(packageFile(dir, 'example.mjs'), example);
    const { stdout } = await run(process.execPath, [example], { cwd: scratch, env: cleanEnv });
    expect(stdout).toBe(readmeExample(dir).output);
  });
});

it('installs the vpci-replay command', async () => {
  const { stdout } = await run(join(scratch, 'node_modules', '.bin', 'vpci-replay'), ['--help'], {
    cwd: scratch,
    env: cleanEnv,
  });
  expect(stdout).toContain('usage: vpci-replay [options] TRACE');
});
