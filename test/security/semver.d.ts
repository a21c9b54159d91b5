/**
 * The two functions of `semver` the dependency-floor test uses. semver is
 * already in the tree (fastify's dependency, hoisted), and ships no types of
 * its own; this saves adding @types/semver for two signatures.
 */
declare module 'semver' {
  export function satisfies(version: string, range: string): boolean;
  export function validRange(range: string): string | null;
  const semver: { satisfies: typeof satisfies; validRange: typeof validRange };
  export default semver;
}
