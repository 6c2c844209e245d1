/**
 * The packages install as npm users get them: each is packed with `pnpm pack` (which turns
 * `workspace:*` into real versions), the tarballs are installed into a scratch project in a temporary
 * directory with `npm install --offline`, and there every package's example runs with plain Node and
 * prints what its README says. The few runtime dependencies from npm (the replay CLI's colours and
 * progress bar, fuzz's peer fast-check, and theirs) are packed from the copies installed here, so no
 * registry is involved.
 * Needs `pnpm build` first (the root `test` script runs it).
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const manifestIn = (dir: string): Manifest =>
  JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/** Where Node finds package `name` from `dir`: the nearest `node_modules/<name>` up the tree. */
function installedDir(name: string, dir: string): string {
  for (let at = dir; ; at = dirname(at)) {
    const candidate = join(at, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(at) === at) throw new Error(`${name} is not installed above ${dir}`);
  }
}

/**
 * The installed directories of every non-workspace package the workspace packages need at run time
 * (peer dependencies too: npm installs them).
 */
function externalRuntimeDependencies(): string[] {
  const found = new Map<string, string>();
  const visit = (dir: string): void => {
    const manifest = manifestIn(dir);
    for (const name of Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })) {
      if (name.startsWith('@vpci/')) continue;
      const installed = installedDir(name, dir);
      const { version } = manifestIn(installed);
      if (found.has(`${name}@${version}`)) continue;
      found.set(`${name}@${version}`, installed);
      visit(installed);
    }
  };
  for (const dir of PACKAGE_DIRS) visit(join(ROOT, 'packages', dir));
  return [...found.values()];
}

/**
 * Packs an installed npm package again as npm lays a tarball out (its files under `package/`). Not
 * with `npm pack`: npm 11 refuses to pack a package whose `devEngines` names another package manager
 * (fast-check's pure-rand names pnpm 11), and the installed copy holds exactly the published files.
 */
function tarball(dir: string): Promise<unknown> {
  const { name, version } = manifestIn(dir);
  const file = join(tarballs, `${name.replace('@', '').replace('/', '-')}-${version}.tgz`);
  return run('tar', ['-czf', file, '--transform', 's,^\\.,package,', '-C', dir, '.']);
}

/** The installed (packed) package.json of package `dir`. */
const installedManifest = (dir: string): string =>
  readFileSync(join(scratch, 'node_modules', '@vpci', dir, 'package.json'), 'utf8');

beforeAll(async () => {
  mkdirSync(tarballs);
  const externals = externalRuntimeDependencies();
  await Promise.all([
    ...PACKAGE_DIRS.map((dir) => pnpm(['pack', '--pack-destination', tarballs], join(ROOT, 'packages', dir))),
    ...externals.map((dir) => tarball(dir)),
  ]);
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
  expect(stdout).toMatch(/^usage: vpci-replay /);
});

it('installs the vpci-fuzz command', async () => {
  const { stdout } = await run(join(scratch, 'node_modules', '.bin', 'vpci-fuzz'), ['--help'], {
    cwd: scratch,
    env: cleanEnv,
  });
  expect(stdout).toMatch(/^usage: vpci-fuzz /);
});
