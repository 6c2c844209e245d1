#!/usr/bin/env node
// The `vpci-replay` executable: see replay/cli.ts.
import { main } from './cli.js';

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`vpci-replay: internal error: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 3;
  },
);
