import { runLatency } from './scenarios/latency.js';
const dir = process.argv[2]!;
const r = await runLatency({ shares: [0.5], stepSeconds: 20, hubEntry: ['--cpu-prof', `--cpu-prof-dir=${dir}`, 'dist/src/main.js'], log: console.log });
console.log(JSON.stringify(r.steps, null, 1));
process.exit(0);
