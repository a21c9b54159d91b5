/**
 * An electricity meter: instantaneous power with load steps (appliances
 * switching on and off) and the cumulative energy as a SenML sum (`s`), the
 * field RFC 8428 has for counters that only grow.
 */
import { gauss, type Profile, type Reading } from './profile.js';

/** Household load levels in W: standby, fridge and lights, cooking, heating. */
const LOADS = [120, 450, 2_200, 3_600];
/** Chance per sample that the load changes level. */
const STEP_CHANCE = 0.05;

type State = { load: number; energyWh: number; lastS: number };

export const energyMeter: Profile<State> = {
  name: 'energy-meter',
  baseUnit: 'W',
  channels: 2,
  init: (random, timeS) => ({ load: LOADS[Math.floor(random() * 2)]!, energyWh: random() * 10_000, lastS: timeS }),
  sample(state, timeS, random): Reading[] {
    if (random() < STEP_CHANCE) state.load = LOADS[Math.floor(random() * LOADS.length)]!;
    const power = Math.max(0, state.load * (1 + gauss(random) * 0.02));
    // Integrate over the time since the previous sample; never backwards.
    const dt = Math.max(0, timeS - state.lastS);
    state.lastS = Math.max(state.lastS, timeS);
    state.energyWh += (power * dt) / 3_600;
    return [
      { n: 'power', u: 'W', v: power },
      { n: 'energy', u: 'Wh', s: state.energyWh },
    ];
  },
};
