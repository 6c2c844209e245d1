/**
 * `vpci-fuzz`, run in-process (`fuzzCli`, one thread) and as the built executable (worker threads):
 * a seed gives the same campaign whatever the workers; shards split a campaign's cases with none run
 * twice and merge into the unsharded summary; an engine broken on purpose (a `hardened` switch turned
 * off with --policy, or a method made to throw) is found, shrunk and written as a reproducer that
 * vpci-replay replays to the same violation; bad arguments exit 2 with a message naming them.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { casePlan, fuzzCli, runCase, shardCases } from '@vpci/fuzz';
import { Machine } from '@vpci/vpci';
import { describe, expect, it, vi } from 'vitest';
import { cli as replay, scratchDirectory } from './support/cli.js';
import { ROOT } from './support/package-readme.js';

const run = promisify(execFile);

/** Runs `vpci-fuzz args…` in-process. */
async function fuzz(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await fuzzCli(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  return { status, stdout, stderr };
}

describe('a campaign', () => {
  it('is the same for the same seed, and another for another seed', async () => {
    const args = ['--profile', 'xen', '--steps', '300', '--json'];
    const a = await fuzz([...args, '--seed', '7']);
    const b = await fuzz([...args, '--seed', '7']);
    const c = await fuzz([...args, '--seed', '8']);
    expect(a.status).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(JSON.parse(a.stdout)).toMatchObject({ format: 'vpci-fuzz-summary/1', seed: 7, complete: true });
    expect(JSON.parse(a.stdout).steps).toBeGreaterThanOrEqual(300);
    expect(c.stdout).not.toBe(a.stdout);
  });

  it('runs the cases up to the step budget: the last one brings the total to it', () => {
    const options = { seed: 3, profile: 'xen' as const };
    const cases = [...shardCases(options, 500, 0, 1)];
    const total = cases.reduce((sum, c) => sum + c.steps, 0);
    expect(total).toBeGreaterThanOrEqual(500);
    expect(total - cases.at(-1)!.steps).toBeLessThan(500);
    expect(cases.map((c) => c.index)).toEqual(cases.map((_, i) => i));
    for (const c of cases.slice(0, 5)) expect(casePlan(options, c.index).steps.length).toBe(c.steps);
  });

  it('with --time alone runs until the time is up, and says the budget stopped it', async () => {
    const started = Date.now();
    const result = await fuzz(['--profile', 'xen', '--time', '1', '--json']);
    expect(result.status).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ budget: { steps: null, seconds: 1 }, complete: false });
    expect(summary.cases).toBeGreaterThan(0);
    // The last case started before the second was up; one case takes milliseconds.
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('gives the same summary bytes on 1 and on 3 worker threads (the built vpci-fuzz)', async () => {
    const bin = join(ROOT, 'packages/fuzz/bin/vpci-fuzz.js');
    const args = ['--seed', '5', '--steps', '400', '--json'];
    const one = await run(process.execPath, [bin, ...args, '--workers', '1']);
    const three = await run(process.execPath, [bin, ...args, '--workers', '3']);
    expect(three.stdout).toBe(one.stdout);
    expect(JSON.parse(one.stdout).cases).toBeGreaterThan(3);
  });
});

describe('shards', () => {
  it('split the cases with none twice, and merge into the unsharded summary', async () => {
    const dir = scratchDirectory('vpci-fuzz-shards-');
    const args = ['--seed', '11', '--profile', 'xen', '--steps', '600', '--json'];
    const whole = await fuzz(args);
    const files: string[] = [];
    const shardCaseSets: number[][] = [];
    for (let i = 0; i < 3; i++) {
      const shard = await fuzz([...args, '--shard', `${i}/3`]);
      expect(shard.status).toBe(0);
      expect(JSON.parse(shard.stdout).covered).toEqual([i]);
      files.push(join(dir, `shard${i}.json`));
      writeFileSync(files[i]!, shard.stdout);
      shardCaseSets.push([...shardCases({ seed: 11, profile: 'xen' }, 600, i, 3)].map((c) => c.index));
    }
    const all = shardCaseSets.flat().sort((a, b) => a - b);
    expect(all).toEqual([...shardCases({ seed: 11, profile: 'xen' }, 600, 0, 1)].map((c) => c.index));
    const merged = await fuzz(['merge', '--json', ...files]);
    expect(merged.status).toBe(0);
    expect(merged.stdout).toBe(
      whole.stdout
        .replace('"shards": 1', '"shards": 3')
        .replace(/"covered": \[\n {4}0\n {2}\]/, '"covered": [\n    0,\n    1,\n    2\n  ]'),
    );
  });

  it('of different campaigns, or one shard twice, are refused (exit 2)', async () => {
    const dir = scratchDirectory('vpci-fuzz-merge-');
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    writeFileSync(
      a,
      (await fuzz(['--seed', '1', '--profile', 'xen', '--steps', '50', '--json', '--shard', '0/2'])).stdout,
    );
    writeFileSync(
      b,
      (await fuzz(['--seed', '2', '--profile', 'xen', '--steps', '50', '--json', '--shard', '1/2'])).stdout,
    );
    const other = await fuzz(['merge', a, b]);
    expect(other.status).toBe(2);
    expect(other.stderr).toMatch(/b\.json is of another campaign than .*a\.json/);
    const twice = await fuzz(['merge', a, a]);
    expect(twice.status).toBe(2);
    expect(twice.stderr).toMatch(/covers shard 0\/2, and so does/);
    writeFileSync(join(dir, 'c.json'), '{"format":"something else"}');
    const wrong = await fuzz(['merge', join(dir, 'c.json')]);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/c\.json: not a vpci-fuzz summary/);
  });
});

describe('a broken engine', () => {
  it('is found, shrunk, and written as a reproducer vpci-replay replays to the same violation', async () => {
    // refuseOverlappingBars off: hardened maps a guest BAR over another of its enabled BARs.
    const out = scratchDirectory('vpci-fuzz-out-');
    const result = await fuzz([
      '--seed',
      '1',
      '--steps',
      '1000',
      '--json',
      '--out',
      out,
      '--policy',
      'refuseOverlappingBars=false',
      // Narrower traces meet two overlapping BARs within this small budget.
      '--without',
      'hidden,hotplug,rebar,e820,foreign,sriov,readonly,setupfail,iommufail',
    ]);
    expect(result.status).toBe(1);
    const summary = JSON.parse(result.stdout);
    expect(summary.failures.length).toBeGreaterThan(0);
    const failure = summary.failures[0];
    expect(failure.kind).toBe('violation');
    expect(failure.shrunkSteps).toBeLessThan(failure.originalSteps);
    expect(failure.shrunkSteps).toBeLessThanOrEqual(6);
    expect(readdirSync(out)).toContain(failure.reproducer);
    const file = join(out, failure.reproducer);
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n')[0]).toBe(
      `# vpci-fuzz reproducer: seed 1, case ${failure.case} (case seed ${failure.caseSeed}), profile hardened, policy {"refuseOverlappingBars":false}, without hidden,hotplug,rebar,e820,foreign,sriov,readonly,setupfail,iommufail`,
    );
    expect(text.split('\n')[1]).toContain(`violation`);
    expect(text.split('\n')[1]).toContain(failure.message);
    expect(text).toContain('"policy":{"refuseOverlappingBars":false}');
    const replayed = await replay(['--json', file]);
    expect(replayed.status).toBe(1);
    const report = JSON.parse(replayed.stdout);
    const kind = failure.message.split(' ')[0];
    expect(report.violations.map((v: { kind: string }) => v.kind)).toContain(kind);
    // The reproducer's header says after which line of the file the violation was first seen (the
    // end of the trace: after its last line, when the vCPUs finish their pending work).
    const header = /after line (\d+)|at the end of the trace/.exec(text.split('\n')[1]!)!;
    const line = header[1] === undefined ? text.trimEnd().split('\n').length : Number(header[1]);
    expect(report.violations.find((v: { kind: string }) => v.kind === kind).line).toBe(line);
  });

  it('that throws is a crash, shrunk to the access that throws (and what gives a guest its device)', () => {
    // A command-register write by a guest throws, as a bug in the engine would.
    const original = Machine.prototype.configWrite;
    const spy = vi.spyOn(Machine.prototype, 'configWrite').mockImplementation(function (
      this: Machine,
      ...args
    ) {
      const [vcpu, , reg] = args;
      if (!vcpu.domain.isHardware && reg === 4) throw new TypeError('injected: the engine fell over');
      return original.apply(this, args);
    });
    try {
      const options = {
        seed: 1,
        profile: 'xen' as const,
        without: ['hidden', 'hotplug', 'rebar', 'e820', 'foreign'] as const,
      };
      let found: ReturnType<typeof runCase> | undefined;
      for (let index = 0; index < 200 && found === undefined; index++) {
        const result = runCase({ ...options, without: [...options.without] }, index);
        if (result.failure !== undefined) found = result;
      }
      expect(found).toBeDefined();
      const failure = found!.failure!;
      expect(failure.kind).toBe('crash');
      expect(failure.message).toBe('TypeError: injected: the engine fell over (while replaying it)');
      // The write, and at most a move giving the device to a guest.
      expect(failure.shrunkSteps).toBeLessThanOrEqual(2);
      const last = JSON.parse(failure.lines.at(-1)!);
      expect(last).toMatchObject({ event: 'write', reg: 4 });
      expect(last.vcpu).toMatch(/^d[12]v/);
      expect(failure.line).toBe(failure.lines.length);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('bad arguments', () => {
  it.each([
    [['--seed', 'x'], "--seed is 'x'; expected a whole number in 0 … 4294967295"],
    [['--profile', 'safe'], "--profile is 'safe'; expected xen or hardened"],
    [['--steps', '0'], "--steps is '0'; expected a whole number in 1 … 9007199254740991"],
    [['--time', '0'], "--time is '0'; expected a number of seconds above 0"],
    [['--workers', '0'], "--workers is '0'; expected a whole number in 1 … 256"],
    [['--shard', '3/3'], "--shard is '3/3'; expected I/N with 0 ≤ I < N, such as 0/4"],
    [['--policy', 'fast=true'], "--policy names 'fast'; expected one of refuseSubpageSharing"],
    [['--policy', 'serialOperations'], "--policy is 'serialOperations'; expected NAME=true or NAME=false"],
    [['--without', 'dragons'], "--without names 'dragons'; expected some of hidden, hotplug"],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
    [['extra'], "unexpected argument 'extra'; expected options, or the command merge"],
    [['merge'], 'merge: no summary given'],
    [['merge', '--seed', '1', 'a.json'], 'merge takes only --json; got --seed'],
  ])('%j exits 2: %s', async (args, message) => {
    const result = await fuzz(args);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('(vpci-fuzz --help lists the options)');
  });

  it('a summary that cannot be read exits 2, naming it', async () => {
    const result = await fuzz(['merge', '/nonexistent/shard.json']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^vpci-fuzz merge: \/nonexistent\/shard\.json: cannot read: /);
  });

  it('--help and --version exit 0', async () => {
    expect((await fuzz(['--help'])).stdout).toMatch(/^usage: vpci-fuzz \[options\]/);
    expect((await fuzz(['-V'])).stdout).toMatch(/^vpci-fuzz \d+\.\d+\.\d+\n$/);
  });
});
