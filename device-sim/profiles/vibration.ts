/**
 * A vibration sensor on a machine: RMS and peak acceleration, quiet most of
 * the time with bursts (a motor starting, a bearing knocking) that last a few
 * samples. All readings are in m/s2, so the unit goes once into bu.
 */
import { gauss, type Profile, type Reading } from './profile.js';

/** Chance per sample that a burst starts. */
const BURST_CHANCE = 0.03;

type State = { burstLeft: number; amplitude: number };

export const vibration: Profile<State> = {
  name: 'vibration',
  baseUnit: 'm/s2',
  channels: 2,
  init: () => ({ burstLeft: 0, amplitude: 0 }),
  sample(state, _timeS, random): Reading[] {
    if (state.burstLeft === 0 && random() < BURST_CHANCE) {
      state.burstLeft = 3 + Math.floor(random() * 10);
      state.amplitude = 4 + random() * 16;
    }
    const base = state.burstLeft > 0 ? state.amplitude : 0.15;
    if (state.burstLeft > 0) state.burstLeft--;
    const rms = Math.max(0.01, base * (1 + gauss(random) * 0.1));
    const peak = rms * (1.4 + random() * 0.8);
    return [
      { n: 'rms', u: 'm/s2', v: rms },
      { n: 'peak', u: 'm/s2', v: peak },
    ];
  },
};
