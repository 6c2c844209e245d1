#!/usr/bin/env node
// The vpci-fuzz executable. It lives outside dist/ so that package managers can link it at install
// time, before the workspace is built; the CLI itself is the built dist/bin.js.
import '../dist/bin.js';
