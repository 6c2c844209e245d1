// Every package builds the same way (tsup.config.base.ts at the root); this one also builds the
// `vpci-replay` executable.
import { defineConfig } from 'tsup';
import base from '../../tsup.config.base';

export default defineConfig({ ...base, entry: ['src/index.ts', 'src/bin.ts'] });
