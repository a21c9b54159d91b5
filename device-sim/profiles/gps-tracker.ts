/**
 * A vehicle tracker: latitude, longitude and speed along a path that turns
 * slowly, with speed changing like traffic. Units are SenML's registered
 * "lat", "lon" and "m/s".
 */
import { gauss, type Profile, type Reading } from './profile.js';

const METRES_PER_DEGREE = 111_320;
const MAX_SPEED = 33; // m/s, about 120 km/h

type State = { lat: number; lon: number; heading: number; speed: number; lastS: number };

export const gpsTracker: Profile<State> = {
  name: 'gps-tracker',
  channels: 3,
  // Start somewhere around central Europe, each device on its own course.
  init: (random, timeS) => ({
    lat: 47 + random() * 6, lon: 5 + random() * 10, heading: random() * 2 * Math.PI, speed: random() * 20, lastS: timeS,
  }),
  sample(state, timeS, random): Reading[] {
    const dt = Math.max(0, timeS - state.lastS);
    state.lastS = Math.max(state.lastS, timeS);
    state.heading += gauss(random) * 0.05;
    state.speed = Math.min(MAX_SPEED, Math.max(0, state.speed + gauss(random) * 1.5));
    const metres = state.speed * dt;
    state.lat = Math.max(-89, Math.min(89, state.lat + (metres * Math.cos(state.heading)) / METRES_PER_DEGREE));
    const lonScale = METRES_PER_DEGREE * Math.cos((state.lat * Math.PI) / 180);
    state.lon = ((state.lon + (metres * Math.sin(state.heading)) / lonScale + 540) % 360) - 180;
    return [
      { n: 'lat', u: 'lat', v: state.lat },
      { n: 'lon', u: 'lon', v: state.lon },
      { n: 'speed', u: 'm/s', v: state.speed },
    ];
  },
};
