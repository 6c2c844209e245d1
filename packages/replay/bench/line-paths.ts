/**
 * Which way the scoped replay takes each kind of line (not a test): the bench's workload (64
 * devices, 60,000 writes) replayed with scoped checks, and per kind of line (line-kinds.ts) how
 * often the inert-write shortcut took it (`applyInertWrite=true`), how many devices it snapshotted,
 * what `DeviceSnapshot.change` said of them and what `hostChangeFindsNothing` and
 * `leftUnmappedFindsNothing` answered. Counts calls only, so the load of the host does not matter.
 * `node --import tsx bench/line-paths.ts`.
 */
import { Replayer } from '@vpci/replay';
import { DeviceSnapshot } from '@vpci/vpci';
import { lineKinds } from './line-kinds.js';
import { line, plan, scopedAndUnchecked, writes } from './writes-workload.js';

const planned = plan(64);
const { scoped } = scopedAndUnchecked(planned);
const all = [...writes(planned, 60000)];
const kinds = lineKinds(all);
const tally = new Map<string, Record<string, number>>();
let kind = '';
const count = (what: string): void => {
  const counts = tally.get(kind) ?? {};
  counts[what] = (counts[what] ?? 0) + 1;
  tally.set(kind, counts);
};
type Methods = Record<string, (...args: unknown[]) => unknown>;
/** Counts each call of `names` on `proto` under its answer (a boolean, a count or a change). */
function countAnswers(proto: Methods, names: string[]): void {
  for (const name of names) {
    const original = proto[name]!;
    proto[name] = function (this: unknown, ...args: unknown[]) {
      const answer = original.apply(this, args);
      count(`${name}=${typeof answer === 'object' ? 'called' : String(answer)}`);
      return answer;
    };
  }
}
countAnswers(Replayer.prototype as unknown as Methods, ['applyInertWrite', 'snapshotTouched', 'checkScoped']);
countAnswers(DeviceSnapshot.prototype as unknown as Methods, [
  'change',
  'hostChangeFindsNothing',
  'leftUnmappedFindsNothing',
]);
for (let i = 0; i < all.length; i++) {
  kind = kinds[i]!;
  scoped.feed(line(all[i]!));
}
for (const [name, counts] of [...tally].sort()) console.log(name.padEnd(28), JSON.stringify(counts));
