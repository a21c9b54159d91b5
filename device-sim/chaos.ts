/**
 * Chaos for rehearsing failures. Roles are dealt once, by a shuffled deck of
 * device indexes, so `--zombies 10` makes exactly 10 % zombies and the roles
 * do not overlap until the percentages add up to more than 100.
 *
 * - zombie: the socket is created with autoPong off, so it never answers the
 *   hub's pings but keeps TCP open; the hub must notice within two ping
 *   intervals and terminate it (the device then reconnects, still a zombie).
 * - flap: the device drops its TCP connection (terminate, no close frame) at
 *   random, on average every FLAP_MEAN_MS while connected.
 * - malformed: on average every MALFORMED_MEAN_MS the device sends one of
 *   MALFORMED_FRAMES, which the hub must answer by closing with 1007; the
 *   device counts a firmware error and reconnects with backoff.
 * Clock skew is not a role: --clock-skew shifts every device's clock.
 */

export const ChaosRole = { ZOMBIE: 1, FLAP: 2, MALFORMED: 4 } as const;

export const FLAP_MEAN_MS = 20_000;
export const MALFORMED_MEAN_MS = 30_000;

/** Invalid frames, each one a different firmware bug; every one must get close 1007. */
export const MALFORMED_FRAMES: readonly Uint8Array[] = [
  // A CBOR tag (1, epoch time) around an integer: tags are not part of the protocol.
  Uint8Array.from([0xc1, 0x1a, 0x69, 0x24, 0x81, 0x00]),
  // A TELEMETRY wrapped in cbor-x's record tag prefix (what an untuned encoder emits).
  Uint8Array.from([0xd9, 0xdf, 0xff, 0x83, 0x01, 0x00, 0x80]),
  // [9]: an unknown message type.
  Uint8Array.from([0x81, 0x09]),
  // A truncated array: not well-formed CBOR.
  Uint8Array.from([0x83, 0x01]),
];

export type ChaosPercentages = { zombies: number; flap: number; malformed: number };

/**
 * Role flags per device index (0-based). `offset`: where these devices start
 * in the whole fleet when it is split over processes; each part deals its
 * share of the fleet's rounded count, so the parts add up to exactly PCT.
 */
export function assignChaos(devices: number, pct: ChaosPercentages, random: () => number = Math.random, offset = 0): Uint8Array {
  const roles = new Uint8Array(devices);
  const deck = new Uint32Array(devices);
  for (let i = 0; i < devices; i++) deck[i] = i;
  for (let i = devices - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = deck[i]!;
    deck[i] = deck[j]!;
    deck[j] = t;
  }
  let next = 0;
  const deal = (percent: number, role: number) => {
    const count = Math.round(((offset + devices) * percent) / 100) - Math.round((offset * percent) / 100);
    for (let k = 0; k < count; k++) roles[deck[next++ % devices]!]! |= role;
  };
  deal(pct.zombies, ChaosRole.ZOMBIE);
  deal(pct.flap, ChaosRole.FLAP);
  deal(pct.malformed, ChaosRole.MALFORMED);
  return roles;
}

/** Waiting time of a Poisson process with the given mean: events "at random". */
export function exponentialDelay(meanMs: number, random: () => number = Math.random): number {
  return -Math.log(1 - random()) * meanMs;
}

/** One of the malformed frames, picked at random. */
export function malformedFrame(random: () => number = Math.random): Uint8Array {
  return MALFORMED_FRAMES[Math.floor(random() * MALFORMED_FRAMES.length)]!;
}
