/**
 * Every published package carries a README and the licence: the README shows the package's
 * example.mjs verbatim (test/pack.test.ts runs it from the packed package and compares what it prints
 * with the README), says how to install it, and the package's `files` ship README.md and LICENSE, the
 * root's MIT licence.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_DIRS, packageFile, ROOT, readmeExample } from './support/package-readme.js';

const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');

it('the root LICENSE is MIT, copyright the project authors', () => {
  expect(license.split('\n')[0]).toBe('MIT License');
  expect(license).toContain('Copyright (c) 2026 The vPCI BAR mapping engine authors');
});

describe.each(PACKAGE_DIRS)('packages/%s', (dir) => {
  const manifest = JSON.parse(readFileSync(packageFile(dir, 'package.json'), 'utf8')) as {
    name: string;
    files: string[];
  };

  it('shows example.mjs verbatim in its README, with what it prints', () => {
    const { code, output } = readmeExample(dir);
    expect(code).toBe(readFileSync(packageFile(dir, 'example.mjs'), 'utf8'));
    expect(output.trim()).not.toBe('');
  });

  it('says how to install it', () => {
    expect(readFileSync(packageFile(dir, 'README.md'), 'utf8')).toContain(`npm install ${manifest.name}\n`);
  });

  it('ships its README and the root licence', () => {
    expect(manifest.files).toEqual(expect.arrayContaining(['README.md', 'LICENSE']));
    expect(readFileSync(packageFile(dir, 'LICENSE'), 'utf8')).toBe(license);
  });
});
