/**
 * The dependency rule (`pnpm deps`): dependencies point one way, rangeset ← p2m ← vpci ← {replay,
 * firmware}, and fuzz above vpci and replay; nothing but the cross-package tests (test/) reaches fuzz;
 * no import cycles in any package, type-only imports included; a package reaches another
 * only by its name, declared in its own package.json `dependencies` (tsup bundles whatever is not
 * declared there, which once silently gave the engine a second RangeSet class).
 *
 * `@vpci/*` names resolve as Node resolves them, through each package's node_modules (symlinks kept, so
 * the closest package.json decides whether a name is declared), to the built dist/: run `pnpm build`
 * first (`pnpm deps` does).
 */

/** Each package and the @vpci packages it may not import: every one not below it. */
const ABOVE = {
  rangeset: ['p2m', 'vpci', 'replay', 'firmware', 'fuzz'],
  p2m: ['vpci', 'replay', 'firmware', 'fuzz'],
  vpci: ['replay', 'firmware', 'fuzz'],
  replay: ['firmware', 'fuzz'],
  firmware: ['replay', 'fuzz'],
  fuzz: ['firmware'],
};

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A module of a package reaches itself again through its imports (type-only ones count).',
      severity: 'error',
      from: { path: '^packages/[^/]+/' },
      to: { circular: true },
    },
    ...Object.entries(ABOVE).map(([pkg, above]) => ({
      name: `${pkg}-imports-only-below`,
      comment: `@vpci/${pkg} (its sources, tests and benchmarks) imports none of ${above.join(', ')}.`,
      severity: 'error',
      from: { path: `^packages/${pkg}/` },
      to: { path: `(^|/)(@vpci|packages)/(${above.join('|')})(/|$)` },
    })),
    {
      name: 'vpci-import-declared',
      comment:
        "An @vpci import must be in the importing package's package.json `dependencies`: tsup bundles " +
        'anything else into the package instead of importing it.',
      severity: 'error',
      from: { path: '^packages/[^/]+/' },
      to: { path: '(^|/)node_modules/@vpci/', dependencyTypesNot: ['npm'] },
    },
    {
      name: 'imports-resolve',
      comment: 'An import that does not resolve (an undeclared @vpci package, or one not built).',
      severity: 'error',
      from: { path: '^packages/[^/]+/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'no-relative-import-across-packages',
      comment: "A package reaches another by its name, never by a path into the other's files.",
      severity: 'error',
      from: { path: '^packages/([^/]+)/' },
      to: { path: '^packages/', pathNot: '^packages/$1/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^packages/[^/]+/(dist|temp)/' },
    tsPreCompilationDeps: true,
    preserveSymlinks: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'types', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts'],
    },
  },
};
