/** What a result was measured on: the figures only mean something next to this. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export type Machine = {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  influxd: string;
  kernel: string;
  openFilesHardLimit: string;
  date: string;
};

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    influxd: run('influxd', ['version']).replace(/^InfluxDB\s+/, ''),
    kernel: `${os.type()} ${os.release()}`,
    openFilesHardLimit: run('bash', ['-c', 'ulimit -Hn']),
    date: new Date().toISOString(),
  };
}

export function machineLine(m: Machine): string {
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, InfluxDB ${m.influxd}, ${m.kernel}, open files hard limit ${m.openFilesHardLimit}; ${m.date}`;
}
