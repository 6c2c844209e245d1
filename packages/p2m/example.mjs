import { gfn, mapMmio, mfn, P2m } from '@vpci/p2m';

// A guest's p2m, with HAP and 2 MiB leaves (the defaults). Map a 4 MiB BAR as Xen's
// map_mmio_regions does: guest frames 0x80000… to machine frames 0xf0000….
const p2m = new P2m();
console.log(mapMmio(p2m, gfn(0x80000), 1024, mfn(0xf0000)));
for (const e of p2m.extentsIn(gfn(0x80000), gfn(0x803ff))) {
  const leaves = `${e.count} frames, ${e.type}, order ${e.order}`;
  console.log(`gfn ${e.gfn.toString(16)} -> mfn ${e.mfn.toString(16)}: ${leaves}`);
}
