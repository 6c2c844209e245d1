/**
 * The start of a standalone HTML page the CLI writes (`--html`, and `--html` with `--compare`): the
 * doctype, the head with the page's title and its style sheet inlined, so the file needs nothing
 * else, and the opening of the body. Each page writes its own body and closes it.
 */
import { pictureEscape as esc } from './picture.js';

/** The lines that open a page titled `title` (plain text; escaped here) styled by `css`. */
export function htmlPageStart(title: string, css: string): string[] {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    `<style>${css}</style>`,
    '</head>',
    '<body>',
  ];
}
