/**
 * The command line as a user runs it (`npx tsx device-sim/cli.ts`): --help
 * explains every option, bad values exit 2 naming the option, and SIGTERM
 * ends a run cleanly with the summary.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPTION_SPECS } from '../../device-sim/options.js';
import { ENROLLMENT_KEY, startHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';

type Run = { code: number | null; stdout: string; stderr: string };

/**
 * `npx tsx device-sim/cli.ts ARGS`, as a user runs it. For the signal test the
 * same file runs under `node --import tsx`, because npx does not pass SIGTERM
 * on to its child.
 */
function sim(args: string[], opts: { terminateWhen?: Promise<unknown>; env?: Record<string, string> } = {}): Promise<Run> {
  const command = opts.terminateWhen === undefined ? ['npx', 'tsx'] : [process.execPath, '--import', 'tsx'];
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, [...command.slice(1), 'device-sim/cli.ts', ...args], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      env: { ...process.env, PULSEWIRE_ENROLLMENT_KEY: '', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // SIGTERM once the test has seen the run at work, as a service manager would stop it.
    const terminate = () => child.kill('SIGTERM');
    void opts.terminateWhen?.then(terminate, terminate);
    // Never leave a simulator running if the test fails: SIGKILL at the latest after 90 s
    // (a loaded 2-core machine has taken over 20 s for five concurrent npx starts).
    const guard = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('pulsewire-sim CLI', () => {
  it('--help lists every option with its default and exits 0', async () => {
    const run = await sim(['--help']);
    expect(run.code).toBe(0);
    for (const spec of OPTION_SPECS) {
      expect(run.stdout).toContain(`--${spec.name}`);
      if (spec.default) expect(run.stdout).toContain(`(default: ${spec.default})`);
    }
  }, 120_000);

  // Concurrent: each case is a process start, and they do not share anything.
  const badOptions: [string[], string][] = [
    [['--rate', 'fast', '--enrollment-key', 'k'], '--rate: must be a number from 0.0001 to 100, got "fast"'],
    [['--profile', 'toaster', '--enrollment-key', 'k'], '--profile: must be one of thermostat, energy-meter, gps-tracker, vibration, mixed'],
    [['--url', 'http://hub/v1/device', '--enrollment-key', 'k'], '--url: must start with ws:// or wss://'],
    [['--url', 'ws://127.0.0.1:8080/', '--enrollment-key', 'k'], '--url: must end with the device path /v1/device, e.g. ws://127.0.0.1:8080/v1/device'],
    [['--devices', '10'], '--enrollment-key: needed'],
    [['--devcies', '10'], "Unknown option '--devcies'"],
  ];
  for (const [args, message] of badOptions) {
    it.concurrent(`${args.join(' ')} exits 2 with a clear message`, async ({ expect }) => {
      const run = await sim(args);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(message);
      expect(run.stderr).toContain('--help');
    }, 120_000);
  }

  it('SIGTERM stops a run: ACKs drained, closed with 1000, summary printed and written, exit 0', async () => {
    const hub = await startHub();
    try {
      // The signal goes once every device is connected and has had a message stored, however long
      // the machine takes to get there: then the run has something to drain and five sockets to close.
      const stored = new Set<string>();
      hub.app.bus.on('telemetry.accepted', (e) => stored.add(e.deviceId));
      const busy = waitFor(() => stored.size === 5, { timeoutMs: 60_000, what: 'five devices sending' });
      const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'sim-cli-')), 's.json');
      const run = await sim(
        ['--url', hub.deviceUrl, '--devices', '5', '--rate', '5', '--prefix', 'cli-', '--summary', file, '--status', 'off'],
        { terminateWhen: busy, env: { PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY } },
      );
      await busy;
      expect(run.code).toBe(0);
      expect(run.stderr).toContain('SIGTERM, stopping');
      expect(run.stdout).toContain('zero loss');
      const summary = JSON.parse(await readFile(file, 'utf8'));
      expect(summary.telemetry.sent).toBeGreaterThanOrEqual(5);
      expect(summary.telemetry.stored).toBe(summary.telemetry.sent);
      expect(summary.connections.disconnects).toEqual({ 1000: 5 });
    } finally {
      await hub.close();
    }
  }, 120_000);
});
