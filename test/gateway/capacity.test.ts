import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deviceCapacity, openFilesLimit } from '../../src/gateway/capacity.js';

describe('device capacity from the open-files limit', () => {
  it('reads the soft limit from a limits file', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'limits-')), 'limits');
    writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                20000                files\n');
    expect(openFilesLimit(file)).toBe(20000);
    expect(deviceCapacity(20000)).toBe(19936);
  });

  it('says nothing when the limit is unknown', () => {
    expect(openFilesLimit('/nonexistent/limits')).toBeUndefined();
    expect(deviceCapacity(undefined)).toBeUndefined();
  });

  it('reads this process limit on Linux: the soft limit a child shell inherits', () => {
    const soft = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    expect(openFilesLimit()).toBe(soft === 'unlimited' ? undefined : Number(soft));
  });
});
