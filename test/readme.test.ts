/**
 * Every command the README shows works as written, from the repository root, with nothing but what the
 * Quick start installed: the `sh` blocks are read from README.md itself, so a command edited there is
 * the command tested. The Quick start's own two commands are CI's (`.ci/run` runs the install and the
 * test command verbatim); here its main job, `start`, runs as the first command runs it.
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The commands of the README's `sh` blocks after `## heading`, comments dropped. */
function commandsUnder(heading: string): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith(heading));
  if (section === undefined) throw new Error(`README.md has no '## ${heading}' section`);
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks
    .flatMap((block) => block.split('\n'))
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '');
}

function run(command: string): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execSync(command, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: 0, stdout, stderr: '' };
  } catch (error) {
    const e = error as { status: number; stdout: string; stderr: string };
    return { status: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the Quick start', () => {
  const commands = commandsUnder('Quick start');

  it('is exactly two commands: set up and run the main job, then the tests', () => {
    expect(commands).toHaveLength(2);
    expect(commands[0]).toMatch(/install.*&&.*start$/);
    expect(commands[1]).toMatch(/ test$/);
  });

  it('runs the main job as the first command does, and .ci/run runs the second verbatim', () => {
    const start = commands[0]!.split('&&').at(-1)!.trim();
    const result = run(start);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/status: ok\n$/);
    const ci = readFileSync(join(root, '.ci/run'), 'utf8');
    expect(ci.split('\n')).toContain(commands[1]);
    expect(ci.split('\n')).toContain(commands[0]!.split('&&')[0]!.trim());
  });
});

describe('every command under "Replaying a trace"', () => {
  const outputs = ['map.html', 'map.svg'].map((file) => join(root, file));
  afterAll(() => {
    for (const file of outputs) rmSync(file, { force: true });
  });

  it.each(commandsUnder('Replaying a trace'))('%s', (command) => {
    for (const file of outputs) rmSync(file, { force: true });
    const result = run(command);
    expect(result.status, result.stderr).toBe(0);
    if (command.includes('--json')) {
      // JSON alone on stdout: no banner from the package manager.
      expect(JSON.parse(result.stdout)).toMatchObject({
        format: expect.stringMatching(/^vpci-replay-report\//),
      });
    } else {
      expect(result.stdout).toMatch(/^vpci-replay .*\n[\s\S]*status: ok\n$/);
    }
    if (command.includes('--html')) {
      expect(existsSync(outputs[0]!) && existsSync(outputs[1]!)).toBe(true);
      expect(readFileSync(outputs[1]!, 'utf8')).toMatch(/^<svg/);
    }
  });
});

describe('every command under "Comparing rule sets"', () => {
  it.each(commandsUnder('Comparing rule sets'))('%s', (command) => {
    const result = run(command);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^vpci-replay --compare \S+: \d+ trace lines under /);
    expect(result.stdout).toMatch(/steps? where the mappings part or meet again/);
  });
});

describe('the commands under "Fuzzing"', () => {
  const commands = commandsUnder('Fuzzing');

  it('.ci/run runs the first (the short hardened campaign) verbatim', () => {
    const ci = readFileSync(join(root, '.ci/run'), 'utf8');
    expect(commands[0]).toMatch(/vpci-fuzz --profile hardened/);
    expect(ci.split('\n')).toContain(commands[0]);
  });

  it.each(commands.slice(1))('%s', (command) => {
    const result = run(command);
    expect(result.status, result.stderr).toBe(0);
    // JSON alone on stdout: no banner from the package manager.
    expect(JSON.parse(result.stdout)).toMatchObject({ format: 'vpci-fuzz-summary/1', failures: [] });
  });
});
