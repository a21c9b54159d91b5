/**
 * The docs that say which test shows what (RELIABILITY.md, SECURITY.md) are
 * read by tests, so a renamed test or a moved file cannot leave a row
 * claiming what nothing shows any more. A cell cites a file as a markdown
 * link and a test in it as a "quoted name" after the link (the doc may
 * shorten a long name with "…": each part must be in the file); "same file"
 * or a quote before any link refers to the last file cited, in the cell or
 * in an earlier row.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export type Citation = { file: string; name?: string };

const CITATION = /\]\(([^)#\s]+)(?:#[^)]*)?\)|"([^"]+)"/g;

/** The files and test names one cell cites, in order; `lastFile` carries over from earlier cells. */
export function citations(cell: string, lastFile?: string): { cited: Citation[]; lastFile: string | undefined } {
  const cited: Citation[] = [];
  let file = lastFile;
  for (const [, link, name] of cell.matchAll(CITATION)) {
    if (link !== undefined) {
      file = link;
      cited.push({ file });
    } else if (file !== undefined) {
      cited.push({ file, name: name! });
    }
  }
  return { cited, lastFile: file };
}

/** What is wrong with one citation: a file that does not exist, or a name its file does not contain. */
export function citationProblem(root: string, citation: Citation): string | undefined {
  if (/^[a-z]+:/.test(citation.file)) return undefined; // an external address
  const full = path.join(root, citation.file);
  if (!existsSync(full)) return `${citation.file} does not exist`;
  if (citation.name === undefined) return undefined;
  // Source quotes escape apostrophes ('the hub\'s'); the doc shortens long names with "…".
  const text = readFileSync(full, 'utf8').replace(/\\'/g, "'");
  const missing = citation.name.split('…').filter(Boolean).filter((part) => !text.includes(part));
  return missing.length > 0 ? `"${citation.name}" is not in ${citation.file}` : undefined;
}
