/**
 * The one list of dependency floors: for each production dependency, the
 * advisories known for it and the versions every copy in package-lock.json
 * must satisfy (the version that fixes the last of them, per major line where
 * a line is still maintained). SECURITY.md's dependency table is checked
 * against this list by dependency-floor.test.ts, so neither can drift.
 *
 * `npm audit` cannot be used here (the registry reachable from these machines
 * does not answer it). The advisories were gathered on 2026-12-07 from the
 * projects' own repositories (SECURITY.md histories, release tags and the
 * commits merged "from fork") and from public advisory pages and pull
 * requests that cite the GHSA ids; SECURITY.md says which. An id is listed
 * only when a source ties it to the package and its fixed version; a CVE id
 * only when a source ties it to the GHSA id.
 */

export type Advisory = {
  /** GHSA id. */
  id: string;
  cve?: string;
  what: string;
  /** First fixed version(s), one per maintained major line. */
  fixedIn: string;
};

export type DependencyFloor = {
  name: string;
  /** A semver range every resolved copy must satisfy; '*' when no advisory is known. */
  safe: string;
  /** Why it is listed when it is not a direct dependency. */
  via?: string;
  advisories: Advisory[];
};

export const ADVISORIES_CHECKED_ON = '2026-12-07';

export const DEPENDENCY_FLOORS: readonly DependencyFloor[] = [
  {
    name: 'ws',
    // 7.x is Node-RED's copy (dev only); the 7.x line still gets security backports.
    safe: '^7.5.11 || >=8.21.0',
    advisories: [
      { id: 'GHSA-96hv-2xvq-fx4p', cve: 'CVE-2026-48779', what: 'memory exhaustion from tiny fragments and data chunks (message parts retained without bound)', fixedIn: '8.21.0, 7.5.11' },
      { id: 'GHSA-58qx-3vcg-4xpx', what: 'uninitialized memory sent to the peer by websocket.close() with a TypedArray reason (8.x only)', fixedIn: '8.20.1' },
      { id: 'GHSA-3h5v-q93c-6h6q', cve: 'CVE-2024-37890', what: 'crash on a request with many HTTP headers (Upgrade header unreadable)', fixedIn: '8.17.1, 7.5.10' },
      { id: 'GHSA-6fc8-4gx4-v693', cve: 'CVE-2021-32640', what: 'ReDoS in the Sec-WebSocket-Protocol header', fixedIn: '7.4.6' },
    ],
  },
  {
    name: 'fastify',
    safe: '>=5.12.5',
    advisories: [
      { id: 'GHSA-4mh8-r7rc-xpvc', what: 'an HTTP/2 server terminated by an uncaught exception when response trailers are used', fixedIn: '5.12.5' },
      { id: 'GHSA-9q9j-q6p8-xq58', what: 'header validation bypass: header-schema names only partly lowercased', fixedIn: '5.12.2' },
      { id: 'GHSA-hwr6-493r-vm6h', what: 'validation bypass: a boolean false schema skipped instead of enforced', fixedIn: '5.12.2' },
      { id: 'GHSA-p68q-wchp-6fh7', what: 'authentication bypass when a malformed URL reaches an encapsulated not-found handler', fixedIn: '5.12.2' },
      { id: 'GHSA-667r-xxjv-c9mm', what: 'request body replaced through an async validation collision', fixedIn: '5.12.2' },
      { id: 'GHSA-w2qp-rph6-63g4', what: 'schema validation bypass via root primitive coercion mismatch', fixedIn: '5.12.1' },
      { id: 'GHSA-3m5p-2c4r-xxw2', cve: 'CVE-2026-16732', what: 'X-Forwarded-* spoofing under a numeric (hop-count) trustProxy', fixedIn: '5.12.1' },
      { id: 'GHSA-247c-9743-5963', cve: 'CVE-2026-33806', what: 'body validation bypass via a leading space in Content-Type', fixedIn: '5.8.5' },
      { id: 'GHSA-444r-cwp2-x5xf', cve: 'CVE-2026-3635', what: 'request.protocol and request.host spoofable via X-Forwarded-Proto/Host from untrusted connections', fixedIn: '5.8.3' },
      { id: 'GHSA-573f-x89g-hqp9', cve: 'CVE-2026-3419', what: 'malformed Content-Type with trailing characters accepted', fixedIn: '5.8.1' },
      { id: 'GHSA-mrq3-vjjr-p77c', cve: 'CVE-2026-25224', what: 'unbounded memory in sendWebStream (Web Streams responses ignore backpressure)', fixedIn: '5.7.3' },
      { id: 'GHSA-jx2c-rxcm-jvmq', cve: 'CVE-2026-25223', what: 'body validation bypass via a tab in Content-Type', fixedIn: '5.7.2' },
      { id: 'GHSA-mg2h-6x62-wpwc', cve: 'CVE-2025-32442', what: 'body validation bypass via Content-Type casing or whitespace', fixedIn: '5.3.2' },
    ],
  },
  {
    name: '@fastify/websocket',
    safe: '>=7.1.1',
    advisories: [
      { id: 'GHSA-4pcg-wr6c-h9cq', cve: 'CVE-2022-39386', what: 'uncaught exception (crash) on a malformed packet', fixedIn: '7.1.1' },
    ],
  },
  {
    name: '@fastify/static',
    safe: '>=10.1.3',
    advisories: [
      { id: 'GHSA-423g-23ch-w7c6', what: 'route guard bypass via `.` and `//` path segments', fixedIn: '10.1.3' },
      { id: 'GHSA-8pvw-jcv7-9cmj', cve: 'CVE-2026-7120', what: 'allowedPath bypass via non-canonical URL paths', fixedIn: '10.1.2' },
      { id: 'GHSA-83w8-p2f5-377r', cve: 'CVE-2026-15074', what: 'route guard bypass via non-leading `..` / `%2E%2E` segments', fixedIn: '10.1.1' },
      { id: 'GHSA-x428-ghpx-8j92', cve: 'CVE-2026-6414', what: 'route guard bypass via encoded path separators (%2F)', fixedIn: '9.1.1' },
      { id: 'GHSA-pr96-94w5-mx2h', what: 'path traversal in the directory listing (list: true)', fixedIn: '9.1.1' },
    ],
  },
  { name: 'helmet', safe: '*', advisories: [] },
  { name: '@fastify/swagger', safe: '*', advisories: [] },
  { name: 'fastify-plugin', safe: '*', advisories: [] },
  { name: 'cbor-x', safe: '*', advisories: [] },
  { name: 'cbor-extract', safe: '*', via: 'cbor-x (native decoder of device bytes)', advisories: [] },
  { name: 'lmdb', safe: '*', advisories: [] },
  { name: 'influx', safe: '*', advisories: [] },
  { name: 'prom-client', safe: '*', advisories: [] },
  { name: '@nats-io/transport-node', safe: '*', advisories: [] },
  { name: '@nats-io/jetstream', safe: '*', advisories: [] },
  { name: '@nats-io/kv', safe: '*', advisories: [] },
  {
    name: 'find-my-way',
    safe: '>=9.7.0',
    via: 'fastify (the router every request goes through)',
    advisories: [
      { id: 'GHSA-c96f-x56v-gq3h', what: 'denial of service with HTTP/2', fixedIn: '9.7.0' },
    ],
  },
];
