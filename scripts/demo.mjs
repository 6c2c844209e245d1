// A small tour of @vpci/rangeset, told as the vPCI work it exists for: the frames of a BAR to map,
// minus the MSI-X pages Xen keeps trapped, mapped in preemptible slices of 64 frames.
// Runs against the built package (pnpm build), as any consumer of the workspace would.
import { RangeSet } from '@vpci/rangeset';

const hex = (n) => `0x${n.toString(16)}`;

// BAR0 of a NIC: 1 MiB at host address 0xfe000000, so frames 0xfe000-0xfe0ff.
// Its MSI-X table sits at offset 0x2000 and the PBA at 0x3000: frames 0xfe002 and 0xfe003.
const bar = new RangeSet({ name: 'bar0', hex: true });
bar.addRange(0xfe000, 0xfe0ff);
console.log(`BAR0 frames to map:           ${bar}`);
bar.removeRange(0xfe002, 0xfe003);
console.log(`minus the MSI-X table and PBA: ${bar}`);

// The vCPU maps at most 64 frames per slice, then asks to be restarted (Xen's -ERESTART).
let slice = 0;
for (;;) {
  slice++;
  let budget = 64;
  const mapped = [];
  const result = bar.consumeRanges((start, end) => {
    const consumed = Math.min(budget, end - start + 1);
    mapped.push(`${hex(start)}-${hex(start + consumed - 1)}`);
    budget -= consumed;
    return { consumed, next: budget === 0 ? 'restart' : 'continue' };
  });
  console.log(`slice ${slice}: mapped ${mapped.join(', ').padEnd(32)} -> ${result.status}; left ${bar}`);
  if (result.status === 'done') break;
}

// Limits and expected failures are values, not exceptions.
const small = new RangeSet({ name: 'limited' });
small.limit(2);
for (const [s, e] of [
  [0, 9],
  [20, 29],
  [40, 49],
  [10, 19],
]) {
  const r = small.addRange(s, e);
  console.log(`limit 2: addRange(${s}, ${e}) -> ${r.ok ? 'ok' : r.code}; ${small}`);
}
console.log(`claimRange(5) on ${small.toString().trim()} -> ${JSON.stringify(small.claimRange(5))}`);
