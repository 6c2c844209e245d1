import { RangeSet } from '@vpci/rangeset';

// The machine frames a domain may map (Xen's iomem_caps): inclusive ranges, merged when they touch.
const iomem = new RangeSet({ name: 'iomem', hex: true });
iomem.addRange(0xa0, 0xbf);
iomem.addRange(0xc0, 0xff); // touches a0-bf: one range a0-ff
iomem.addSingleton(0xfee00);
iomem.removeRange(0xb0, 0xb7); // splits a0-ff in two
console.log(iomem.toString());
console.log(iomem.containsRange(0xb8, 0xff), iomem.overlapsRange(0xb0, 0xb7));

// Bad arguments throw at once, naming the argument; expected outcomes are values.
try {
  iomem.addRange(5, 1);
} catch (error) {
  console.log(error.name);
}
