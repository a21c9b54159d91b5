/** Envelope rules of section 3: which bytes become which message or which error. */
import { describe, it, expect } from 'vitest';
import {
  decodeDeviceBatch, decodeDeviceFrame, decodeHubFrame, encodeAck, encodeCbor, encodeCommand, encodeDesired,
  encodeHubBatch, encodeResult, encodeTelemetry,
} from '../../src/protocol/index.js';
import { PulsewireError } from '../../src/errors/catalog.js';

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const deviceCode = (value: unknown) => {
  const r = decodeDeviceFrame(encodeCbor(value));
  return r instanceof PulsewireError ? r.code : null;
};
const deviceDetail = (value: unknown) => (decodeDeviceFrame(encodeCbor(value)) as PulsewireError).detail;

describe('decodeDeviceFrame', () => {
  it('accepts any pack item in TELEMETRY: SenML validation is not the codec\'s job', () => {
    expect(decodeDeviceFrame(bytes('830100f6'))).toEqual({ type: 1, seq: 0, pack: null });
    expect(decodeDeviceFrame(encodeCbor([1, 2 ** 32 - 1, 'junk']))).toEqual({ type: 1, seq: 2 ** 32 - 1, pack: 'junk' });
  });

  it('refuses a seq of 2^32, negative or non-integral', () => {
    expect(deviceCode([1, 2 ** 32, []])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([1, -1, []])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([1, 1.5, []])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([1, '7', []])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceDetail([1, 1.5, []])).toMatch(/seq/);
  });

  it('accepts integers in any CBOR width and integral floats where an unsigned integer is expected', () => {
    expect(decodeDeviceFrame(bytes('83011b000000000000000780'))).toEqual({ type: 1, seq: 7, pack: [] });
    expect(decodeDeviceFrame(bytes('8301f9470080'))).toEqual({ type: 1, seq: 7, pack: [] });
  });

  it('refuses wrong element counts with a reason naming the message', () => {
    expect(deviceCode([1, 7])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([1, 7, [], 0])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceDetail([1, 7])).toBe('TELEMETRY must have 3 elements, got 2');
    expect(deviceCode([4, 'c'])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([4, 'c', 1, null, 0])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([5])).toBe('PW_ERR_MESSAGE_SHAPE');
  });

  it('checks RESULT commandId and status', () => {
    expect(decodeDeviceFrame(encodeCbor([4, 'c-1', 0]))).toEqual({ type: 4, commandId: 'c-1', status: 0 });
    expect(decodeDeviceFrame(encodeCbor([4, 'x'.repeat(36), 3, null]))).toEqual({ type: 4, commandId: 'x'.repeat(36), status: 3, payload: null });
    expect(deviceCode([4, 'x'.repeat(37), 1])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([4, '', 1])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([4, 42, 1])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([4, 'c-1', 4])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceDetail([4, 'c-1', 4])).toMatch(/status/);
  });

  it('requires REPORTED state to be a map with text or integer keys', () => {
    expect(deviceCode([5, [1]])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([5, 'x'])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(decodeDeviceFrame(bytes('8205a0'))).toEqual({ type: 5, state: new Map() });
    expect(decodeDeviceFrame(bytes('8205a1f4f5'))).toBeInstanceOf(PulsewireError);
  });

  it('refuses hub → device types as PW_ERR_MESSAGE_DIRECTION and unknown types as PW_ERR_MESSAGE_TYPE', () => {
    expect(deviceCode([2, 7])).toBe('PW_ERR_MESSAGE_DIRECTION');
    expect(deviceCode([3, 'c', 'n', null])).toBe('PW_ERR_MESSAGE_DIRECTION');
    expect(deviceCode([6, 1, {}])).toBe('PW_ERR_MESSAGE_DIRECTION');
    expect(deviceCode([0])).toBe('PW_ERR_MESSAGE_TYPE');
    expect(deviceCode([7, 1])).toBe('PW_ERR_MESSAGE_TYPE');
  });

  it('treats an array starting with a map as a bare SenML pack', () => {
    const msg = decodeDeviceFrame(bytes('81a20063616263' + '02182a'));
    expect(msg).toEqual({ type: 'bare-pack', pack: [new Map<number, unknown>([[0, 'abc'], [2, 42]])] });
  });

  it('refuses non-arrays, empty arrays and other first elements', () => {
    expect(deviceCode({ a: 1 })).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode(7)).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceDetail([])).toBe('message is an empty array');
    expect(deviceCode(['telemetry'])).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(deviceCode([-1, 7, []])).toBe('PW_ERR_MESSAGE_SHAPE');
  });

  it('passes scan errors through and never throws', () => {
    expect((decodeDeviceFrame(bytes('ff')) as PulsewireError).code).toBe('PW_ERR_CBOR_MALFORMED');
    expect((decodeDeviceFrame(bytes('830107d9dfff80')) as PulsewireError).code).toBe('PW_ERR_CBOR_TAG');
    expect((decodeDeviceFrame(bytes('81'.repeat(5000))) as PulsewireError).code).toBe('PW_ERR_CBOR_TOO_DEEP');
  });

  it('gives each SenML record depth 3 and refuses a pack nested past 16', () => {
    const deep = (n: number) => { let v: unknown = 0; for (let i = 0; i < n; i++) v = [v]; return v; };
    // [1, 7, pack]: envelope 1, pack 2, record 3 ... 16 levels fit.
    const ok = new Uint8Array([...bytes('830107'), ...encodeCbor(deep(15))]);
    expect(decodeDeviceFrame(ok)).toMatchObject({ type: 1, seq: 7 });
    const tooDeep = new Uint8Array([...bytes('830107'), ...bytes('81'.repeat(15) + '80')]);
    expect((decodeDeviceFrame(tooDeep) as PulsewireError).code).toBe('PW_ERR_CBOR_TOO_DEEP');
  });

  it('applies maxBytes and maxItems when given', () => {
    expect((decodeDeviceFrame(bytes('83010780'), { maxBytes: 3 }) as PulsewireError).code).toBe('PW_ERR_FRAME_TOO_BIG');
    expect((decodeDeviceFrame(bytes('83010780'), { maxItems: 3 }) as PulsewireError).code).toBe('PW_ERR_CBOR_TOO_MANY_ITEMS');
    expect(decodeDeviceFrame(bytes('83010780'), { maxBytes: 4, maxItems: 4 })).toEqual({ type: 1, seq: 7, pack: [] });
  });

  it('decodes indefinite-length strings and containers in messages', () => {
    expect(decodeDeviceFrame(bytes('9f047f6263' + '2d6230' + '31ff' + '01ff'))).toEqual({ type: 4, commandId: 'c-01', status: 1 });
  });
});

describe('decodeDeviceBatch (HTTP fallback body)', () => {
  it('decodes an array of device messages', () => {
    const body = encodeCbor([[1, 7, []], [4, 'c-01', 1], [5, { fw: '1' }]]);
    expect(decodeDeviceBatch(body)).toEqual([
      { type: 1, seq: 7, pack: [] },
      { type: 4, commandId: 'c-01', status: 1 },
      { type: 5, state: new Map([['fw', '1']]) },
    ]);
    expect(decodeDeviceBatch(bytes('80'))).toEqual([]);
  });
  it('refuses bare packs, non-arrays and names the failing message', () => {
    const r = decodeDeviceBatch(encodeCbor([[1, 7, []], [new Map([[0, 'x']])]])) as PulsewireError;
    expect(r.code).toBe('PW_ERR_MESSAGE_SHAPE');
    expect(r.detail).toMatch(/^message 1: /);
    expect((decodeDeviceBatch(encodeCbor({})) as PulsewireError).code).toBe('PW_ERR_MESSAGE_SHAPE');
    expect((decodeDeviceBatch(encodeCbor([[2, 1]])) as PulsewireError).code).toBe('PW_ERR_MESSAGE_DIRECTION');
  });
});

describe('decodeHubFrame', () => {
  it('refuses device → hub types and bad shapes', () => {
    expect((decodeHubFrame(encodeTelemetry(1, [])) as PulsewireError).code).toBe('PW_ERR_MESSAGE_DIRECTION');
    expect((decodeHubFrame(encodeCbor([2])) as PulsewireError).code).toBe('PW_ERR_MESSAGE_SHAPE');
    expect((decodeHubFrame(encodeCbor([2, 1, 0, 5])) as PulsewireError).code).toBe('PW_ERR_MESSAGE_SHAPE');
    expect((decodeHubFrame(encodeCbor([6, 1, []])) as PulsewireError).code).toBe('PW_ERR_MESSAGE_SHAPE');
    expect((decodeHubFrame(encodeCbor([9])) as PulsewireError).code).toBe('PW_ERR_MESSAGE_TYPE');
  });
  it('round-trips every hub encoder', () => {
    expect(decodeHubFrame(encodeAck(4294967295, 4, 'slow down'))).toEqual({ type: 2, seq: 4294967295, code: 4, reason: 'slow down' });
    expect(decodeHubFrame(encodeCommand('c', 'reboot'))).toEqual({ type: 3, commandId: 'c', name: 'reboot', args: null });
    expect(decodeHubFrame(encodeDesired(2 ** 40, {}))).toEqual({ type: 6, version: 2 ** 40, state: new Map() });
  });
});

describe('encoders refuse what the protocol cannot carry', () => {
  it('checks seq, status, commandId, version and state', () => {
    expect(() => encodeAck(2 ** 32)).toThrow(RangeError);
    expect(() => encodeTelemetry(-1, [])).toThrow(RangeError);
    expect(() => encodeResult('c', 4)).toThrow(RangeError);
    expect(() => encodeCommand('x'.repeat(37), 'n')).toThrow(RangeError);
    expect(() => encodeDesired(1.5, {})).toThrow(RangeError);
    expect(() => encodeDesired(1, [] as unknown as Record<string, unknown>)).toThrow(TypeError);
  });
  it('encodes an HTTP answer as an array of frames, each byte-identical to its WebSocket form', () => {
    const batch = encodeHubBatch([{ type: 2, seq: 7 }, { type: 6, version: 3, state: { interval: 30 } }]);
    expect(hex(batch)).toBe('82' + '820207' + '830603a168696e74657276616c181e');
    expect(hex(encodeHubBatch([]))).toBe('80');
  });
});
