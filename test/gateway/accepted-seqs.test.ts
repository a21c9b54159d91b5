import { describe, expect, it } from 'vitest';
import { AcceptedSeqs, frameFingerprint, REMEMBERED_SEQS } from '../../src/gateway/accepted-seqs.js';

describe('AcceptedSeqs', () => {
  it('remembers accepted seqs with their fingerprint, including 0 and 2^32-1', () => {
    const seqs = new AcceptedSeqs();
    expect(seqs.has(0, 5)).toBe(false);
    seqs.add(0, 5);
    seqs.add(2 ** 32 - 1, -7);
    expect(seqs.has(0, 5)).toBe(true);
    expect(seqs.has(2 ** 32 - 1, -7)).toBe(true);
    expect(seqs.has(1, 5)).toBe(false);
  });

  it('does not take a different message under a known seq for a resend (device rebooted)', () => {
    const seqs = new AcceptedSeqs();
    seqs.add(0, frameFingerprint(Buffer.from('8301008100', 'hex')));
    expect(seqs.has(0, frameFingerprint(Buffer.from('8301008100', 'hex')))).toBe(true);
    expect(seqs.has(0, frameFingerprint(Buffer.from('8301008101', 'hex')))).toBe(false);
  });

  it('keeps every entry in order while its storage grows (a device that has sent little)', () => {
    const seqs = new AcceptedSeqs();
    expect(seqs.entries()).toEqual([]);
    for (let i = 0; i < 37; i++) seqs.add(1000 + i, -1 - i);
    expect(seqs.entries()).toEqual(Array.from({ length: 37 }, (_, i) => [1000 + i, -1 - i]));
    for (let i = 0; i < 37; i++) expect(seqs.has(1000 + i, -1 - i)).toBe(true);
    expect(seqs.has(1037, -38)).toBe(false);
  });

  it('forgets the oldest beyond its window and keeps order', () => {
    const seqs = new AcceptedSeqs();
    for (let i = 0; i < REMEMBERED_SEQS + 10; i++) seqs.add(i, i);
    expect(seqs.has(9, 9)).toBe(false);
    expect(seqs.has(10, 10)).toBe(true);
    expect(seqs.has(REMEMBERED_SEQS + 9, REMEMBERED_SEQS + 9)).toBe(true);
    const all = seqs.entries();
    expect(all).toHaveLength(REMEMBERED_SEQS);
    expect(all[0]).toEqual([10, 10]);
    expect(all.at(-1)).toEqual([REMEMBERED_SEQS + 9, REMEMBERED_SEQS + 9]);
  });
});

describe('frameFingerprint', () => {
  it('is stable and sensitive to every byte', () => {
    const a = Buffer.from('83010782a500', 'hex');
    expect(frameFingerprint(a)).toBe(frameFingerprint(Buffer.from(a)));
    expect(frameFingerprint(a)).not.toBe(frameFingerprint(Buffer.from('83010782a501', 'hex')));
    expect(Number.isInteger(frameFingerprint(a))).toBe(true);
  });
});
