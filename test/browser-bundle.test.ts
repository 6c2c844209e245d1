/**
 * The engine runs in a browser: @vpci/vpci's sources, bundled by esbuild for the browser together with
 * the packages they import (resolved by name, as a consumer's bundler would, so `pnpm build` first),
 * must need no Node built-in (`node:fs`, `fs`, `path`, …). For platform 'browser' esbuild refuses to
 * resolve a built-in, so such an import fails the build; the metafile check covers anything marked
 * external on the way.
 */
import { isBuiltin } from 'node:module';
import { fileURLToPath } from 'node:url';
import { type BuildFailure, type BuildOptions, build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Bundles `input` for the browser; returns each Node built-in it needs, or the build's errors. */
async function nodeBuiltinsIn(input: Pick<BuildOptions, 'entryPoints' | 'stdin'>): Promise<string[]> {
  try {
    const result = await build({
      ...input,
      absWorkingDir: root,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    return Object.entries(result.metafile.inputs).flatMap(([file, { imports }]) =>
      imports.filter((i) => isBuiltin(i.path)).map((i) => `${file} imports ${i.path}`),
    );
  } catch (error) {
    return (error as BuildFailure).errors.map((e) => `${e.location?.file ?? '?'}: ${e.text}`);
  }
}

describe('@vpci/vpci in a browser bundle', () => {
  it('needs no Node built-in', async () => {
    expect(await nodeBuiltinsIn({ entryPoints: ['packages/vpci/src/index.ts'] })).toEqual([]);
  });

  it('would be caught importing one (the check is not vacuous)', async () => {
    const found = await nodeBuiltinsIn({
      stdin: {
        contents: "import { readFileSync } from 'node:fs'; export const f = readFileSync;",
        loader: 'ts',
      },
    });
    expect(found.join('\n')).toContain('node:fs');
  });
});
