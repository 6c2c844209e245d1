/**
 * `vpci-replay` run in-process for the tests (`replayCli` with captured output and standard input),
 * and trace files written to a scratch directory.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replayCli } from '@vpci/replay';

/** What one run of the CLI gave: exit status and both outputs. */
export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs `vpci-replay args…` with `stdin` as its standard input and an empty environment. */
export async function cli(args: string[], stdin: (string | Buffer)[] = []): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const status = await replayCli(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    stdin: (async function* () {
      for (const chunk of stdin) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    })(),
    env: {},
  });
  return { status, stdout, stderr };
}

/** A scratch directory for trace files, new for each test file that asks. */
export function scratchDirectory(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Writes `content` to `name` in `dir` and returns its path; lines are joined with newlines (and end
 * with one).
 */
export function writeTrace(dir: string, name: string, content: string | Buffer | readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, Array.isArray(content) ? `${content.join('\n')}\n` : (content as string | Buffer));
  return path;
}
