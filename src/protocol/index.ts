/**
 * Public surface of the protocol module: message types, codec, SenML
 * resolution, limits. The gateway, the HTTP fallback and device-sim import
 * from here (or from the individual files); nobody copies protocol code.
 */
export * from './messages.js';
export * from './limits.js';
export { scanCbor, inspectCbor, type ScanLimits, type ScanResult, type StringSpan } from './cbor-scan.js';
export { decodeCbor } from './cbor-decode.js';
export { encodeCbor, Float64, float64 } from './cbor-encode.js';
export {
  decodeDeviceFrame, decodeDeviceBatch, decodeHubFrame, type DecodeOptions,
  encodeAck, encodeCommand, encodeDesired, encodeHubMessage, encodeHubBatch,
  encodeTelemetry, encodeResult, encodeReported, encodeDeviceMessage,
} from './codec.js';
export { resolvePack, type PackLimits, type ResolveOptions } from './senml.js';
export { SENML_LABELS, senmlField, senmlRecord, type SenmlField, type SenmlFields } from './senml-labels.js';
