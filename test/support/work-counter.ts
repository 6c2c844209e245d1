/**
 * An operation counter that needs no hooks in the engine: V8's precise block coverage
 * (`Profiler.startPreciseCoverage` with `detailed`), which counts every function and block entered,
 * inlined or optimised code included. `countWork` runs a step and returns how many blocks of the
 * repository's packages (`packages/<name>/src` or `dist`) it entered: a figure that depends only on
 * the code and the step, never on the machine's load, so a test can say "the work grows with the
 * VFs, not with their square" without timing anything.
 */
import { Session } from 'node:inspector/promises';

/** Counts the blocks the repository's packages enter while steps run. */
export class WorkCounter {
  private readonly session = new Session();

  /** Starts counting (recompiles the functions with block counters). */
  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
    await this.take();
  }

  /** Blocks of the packages entered while `step` ran. */
  async count(step: () => void): Promise<number> {
    await this.take();
    step();
    return this.take();
  }

  /** Stops counting. */
  async stop(): Promise<void> {
    await this.session.post('Profiler.stopPreciseCoverage');
    await this.session.post('Profiler.disable');
    this.session.disconnect();
  }

  /** The blocks entered since the last take (taking resets V8's counts). */
  private async take(): Promise<number> {
    const { result } = await this.session.post('Profiler.takePreciseCoverage');
    let blocks = 0;
    for (const script of result) {
      if (!/\/packages\/[^/]+\/(src|dist)\//.test(script.url) || script.url.includes('node_modules'))
        continue;
      for (const fn of script.functions) for (const range of fn.ranges) blocks += range.count;
    }
    return blocks;
  }
}
