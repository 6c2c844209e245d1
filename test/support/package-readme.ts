/**
 * The published packages and what each README shows: the example (the package's example.mjs,
 * verbatim, in a ```js block) and what it prints (the ```text block after "prints").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The packages' directories under packages/, in dependency order. */
export const PACKAGE_DIRS = ['rangeset', 'p2m', 'vpci', 'replay', 'firmware', 'fuzz'] as const;

/** Absolute path of a file of package `dir`. */
export const packageFile = (dir: string, file: string): string => join(ROOT, 'packages', dir, file);

/** The example code and its printed output as package `dir`'s README shows them; throws if missing. */
export function readmeExample(dir: string): { code: string; output: string } {
  const readme = readFileSync(packageFile(dir, 'README.md'), 'utf8');
  const found = /```js\n([\s\S]*?)```\n\nprints\n\n```text\n([\s\S]*?)```\n/.exec(readme);
  if (found === null)
    throw new Error(
      `packages/${dir}/README.md: no \`\`\`js example followed by "prints" and a \`\`\`text block`,
    );
  return { code: found[1]!, output: found[2]! };
}
