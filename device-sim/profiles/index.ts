/**
 * The profiles by name, and `mixed`, which assigns them round-robin by
 * device index so a fleet of 50 has every kind.
 */
import { energyMeter } from './energy-meter.js';
import { gpsTracker } from './gps-tracker.js';
import type { Profile } from './profile.js';
import { thermostat } from './thermostat.js';
import { vibration } from './vibration.js';

export { buildPack, type Profile, type Reading } from './profile.js';

export const PROFILES: readonly Profile<any>[] = [thermostat, energyMeter, gpsTracker, vibration];
export const PROFILE_NAMES = [...PROFILES.map((p) => p.name), 'mixed'] as const;

/** The profile of device number `index` (0-based) under the --profile option `name`. */
export function profileFor(name: string, index: number): Profile<any> {
  if (name === 'mixed') return PROFILES[index % PROFILES.length]!;
  const profile = PROFILES.find((p) => p.name === name);
  if (!profile) throw new RangeError(`unknown profile ${name}; one of ${PROFILE_NAMES.join(', ')}`);
  return profile;
}
