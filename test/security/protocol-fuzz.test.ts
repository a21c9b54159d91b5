/**
 * Property-based fuzzing of the device-facing parsers (the properties are in
 * fuzz/protocol-properties.ts). Bounded for `npm test`: a fixed seed, so a
 * failure is the same failure on every machine, and a run count that keeps
 * the file to seconds. Long runs with fresh seeds: `npx tsx
 * bench/probes/fuzz.ts --runs 200000` (SECURITY.md).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { PROTOCOL_PROPERTIES } from './fuzz/protocol-properties.js';

const SEED = 18_2026;
const RUNS = 1000;

describe('protocol parsers under generated input', () => {
  it.each(PROTOCOL_PROPERTIES)('$name', ({ property }) => {
    fc.assert(property(), { seed: SEED, numRuns: RUNS });
  });
});
