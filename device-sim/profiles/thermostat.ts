/**
 * A room thermostat: temperature and humidity. A daily cycle (warmest mid
 * afternoon, UTC) plus a slow, mean-reverting random walk per device, so
 * dashboards show plausible curves and devices differ from one another.
 */
import { dayPhase, gauss, type Profile, type Reading } from './profile.js';

type State = { setpoint: number; tempDrift: number; humDrift: number };

export const thermostat: Profile<State> = {
  name: 'thermostat',
  channels: 2,
  init: (random) => ({ setpoint: 19 + random() * 4, tempDrift: 0, humDrift: 0 }),
  sample(state, timeS, random): Reading[] {
    // Mean reversion (0.98) keeps the walk from wandering off over a long run.
    state.tempDrift = state.tempDrift * 0.98 + gauss(random) * 0.05;
    state.humDrift = state.humDrift * 0.98 + gauss(random) * 0.2;
    const cycle = Math.sin(2 * Math.PI * (dayPhase(timeS) - 0.375));
    const temp = state.setpoint + 1.5 * cycle + state.tempDrift;
    const hum = Math.min(100, Math.max(0, 45 - 8 * cycle + state.humDrift));
    return [
      { n: 'temperature', u: 'Cel', v: temp },
      { n: 'humidity', u: '%RH', v: hum },
    ];
  },
};
