// Screenshots of the HTML memory map of every example trace, for the docs: replays each
// examples/*.jsonl with the built engine (run `pnpm build` first), writes its page (renderHtml) to a
// temporary directory, opens it in headless Chromium through playwright-core and saves
// docs/screenshots/<example>.png at 1400x900, the whole map in view.
//
//   node scripts/screenshots.mjs [NAME…]      only the examples whose file name contains a NAME
//
// Chromium: CHROMIUM_PATH, else the one the @sparticuz/chromium dev dependency ships.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import packagedChromium from '@sparticuz/chromium';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(root, 'packages/replay/dist/index.js');
if (!existsSync(bundle)) {
  console.error('screenshots: packages/replay is not built; run `pnpm build` first');
  process.exit(2);
}
// The built package, as any consumer has it (the root does not depend on @vpci/replay by name).
const { renderHtml, replayText } = await import(pathToFileURL(bundle).href);

const executablePath = process.env.CHROMIUM_PATH || (await packagedChromium.executablePath());
if (!existsSync(executablePath)) {
  console.error(
    `screenshots: CHROMIUM_PATH is ${executablePath}, which does not exist; expected a Chromium binary`,
  );
  process.exit(2);
}

const filters = process.argv.slice(2);
const examples = readdirSync(join(root, 'examples'))
  .filter((file) => file.endsWith('.jsonl'))
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();
const out = join(root, 'docs/screenshots');
mkdirSync(out, { recursive: true });
const scratch = mkdtempSync(join(tmpdir(), 'vpci-screenshots-'));
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  for (const file of examples) {
    const name = basename(file, '.jsonl');
    const report = replayText(readFileSync(join(root, 'examples', file), 'utf8'), file);
    const page = join(scratch, `${name}.html`);
    writeFileSync(page, renderHtml(report));
    const tab = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    await tab.goto(pathToFileURL(page).href);
    await tab.waitForSelector('#viewer[data-ready="true"]', { timeout: 10_000 });
    if (errors.length > 0) throw new Error(`${file}: the page failed: ${errors.join('; ')}`);
    await tab.screenshot({ path: join(out, `${name}.png`) });
    await tab.close();
    console.log(`docs/screenshots/${name}.png  (${report.status})`);
  }
} finally {
  await browser.close();
  rmSync(scratch, { recursive: true, force: true });
}
