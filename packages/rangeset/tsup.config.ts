// Every package builds the same way (tsup.config.base.ts at the root); this one also builds the
// `@vpci/rangeset/internal` entry: the interpolation search the p2m's lookup shares and the interval
// index the p2m and vPCI keep, which are not part of the public API and carry no compatibility promise.
import { defineConfig } from 'tsup';
import base from '../../tsup.config.base';

export default defineConfig({
  ...base,
  entry: { index: 'src/index.ts', internal: 'src/_internal/internal.ts' },
});
