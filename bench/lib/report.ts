/**
 * Output of a scenario: a table on the terminal, the full result as JSON in
 * bench/results/, and the scenario's own section of BENCHMARKS.md (replaced
 * in place between markers, so scenarios run at different times coexist).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineLine, type Machine } from './machine.js';
import type { Placement } from './proc.js';

export type Row = Array<string | number>;
export type Table = { title: string; head: string[]; rows: Row[] };
/** One target of an issue, with the figure measured for it. */
export type Target = { target: string; figure: string; met: boolean };

export const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ROOT = path.dirname(BENCH_DIR);

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)} x` : 'n/a';
}

export function textTable(t: Table): string {
  const cells = [t.head, ...t.rows.map((r) => r.map(String))];
  const widths = t.head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [t.title, line(t.head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function markdownTable(t: Table): string {
  const esc = (c: string | number) => String(c).replace(/\|/g, '\\|');
  return [`| ${t.head.map(esc).join(' | ')} |`, `|${t.head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

/** The table every scenario ends with: each target, its figure, met or not. */
export function targetsTable(targets: Target[], title = 'Targets (issue 4)'): Table {
  return { title, head: ['target', 'figure', 'met'], rows: targets.map((t) => [t.target, t.figure, t.met ? 'met' : 'NOT met']) };
}

/** What every scenario result carries for its section's heading. */
export type SectionFacts = { machine: Machine; placement: Placement };

/** The fields every scenario's result starts with: which scenario, where, with what options, and its targets. */
export type ResultHead<S extends string, O> = SectionFacts & { scenario: S; options: Omit<O, 'log' | 'hubEntry'>; targets: Target[] };

/**
 * A scenario's BENCHMARKS.md section: heading, machine, placement, any lines
 * of its own (scale, caps), how to reproduce, its tables, its notes.
 */
export function sectionMarkdown(o: { scenario: string; facts: SectionFacts; lines?: string[]; command: string; jsonFile: string; tables: Table[]; notes: string[] }): string {
  return [
    `## ${o.scenario}`,
    '',
    `Machine: ${machineLine(o.facts.machine)}.`,
    `Placement: ${o.facts.placement.note}.`,
    ...(o.lines ?? []),
    `Reproduce: \`${o.command}\` (full result: \`${o.jsonFile}\`, not committed).`,
    '',
    ...o.tables.flatMap((t) => [`**${t.title}**`, '', markdownTable(t), '']),
    ...o.notes,
  ].join('\n');
}

export function writeResultJson(scenario: string, result: unknown): string {
  const dir = path.join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${scenario}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return path.relative(ROOT, file);
}

const HEADER = `# Benchmarks

Measured by \`npm run bench\` (all scenarios) or \`npm run bench -- <scenario>\`
(see bench/README.md). Each section below is rewritten by its own scenario;
the machine and date are in each section. Machines here are shared and noisy,
so every figure that matters is given as a ratio to a baseline measured in
the same run.
`;

/** Replaces (or appends) the section between `<!-- bench:NAME -->` markers. */
export function writeSection(scenario: string, markdown: string, file = path.join(ROOT, 'BENCHMARKS.md')): void {
  const begin = `<!-- bench:${scenario}:begin -->`;
  const end = `<!-- bench:${scenario}:end -->`;
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  const next = from >= 0 && to > from ? text.slice(0, from) + block + text.slice(to + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}

/**
 * The section a run of the whole suite writes on top: one table of every
 * target of every scenario from that one run, and how to reproduce it.
 */
export function summaryMarkdown(machine: Machine, finished: string, command: string, runs: Array<{ scenario: string; targets: Target[]; jsonFile: string }>): string {
  const table: Table = {
    title: 'Every target, one run of the whole suite',
    head: ['scenario', 'target', 'figure', 'met'],
    rows: runs.flatMap((r) => r.targets.map((t) => [r.scenario, t.target, t.figure, t.met ? 'met' : 'NOT met'])),
  };
  const met = runs.reduce((n, r) => n + r.targets.filter((t) => t.met).length, 0);
  const total = runs.reduce((n, r) => n + r.targets.length, 0);
  return [
    '## Summary of the last full run',
    '',
    `Machine: ${machineLine(machine)}; finished ${finished}.`,
    `Reproduce: \`${command}\` (every scenario, one after the other; results: ${runs.map((r) => `\`${r.jsonFile}\``).join(', ')}, not committed).`,
    `${met} of ${total} targets met. The sections below are from this same run; the causes of the targets not met are under Findings.`,
    '',
    markdownTable(table),
  ].join('\n');
}
