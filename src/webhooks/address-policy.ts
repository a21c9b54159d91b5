/**
 * Server-side request forgery: a webhook URL is chosen by whoever holds an
 * admin key, and the hub POSTs to it from inside the network. By default the
 * hub refuses endpoints that resolve to loopback, private, link-local
 * (cloud metadata lives at 169.254.169.254 and fd00:ec2::254), carrier-grade
 * NAT, multicast or reserved addresses, and IPv6 forms that embed an IPv4
 * address (mapped, NAT64, 6to4, Teredo). It checks twice: at registration, so
 * the operator hears at once, and at every connection, on the addresses the
 * connection will really use (a name that resolved to a public address at
 * registration may resolve to 127.0.0.1 later: DNS rebinding).
 * PULSEWIRE_WEBHOOK_ALLOW_PRIVATE turns the policy off.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupAllOptions, LookupOneOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { PulsewireError } from '../errors/catalog.js';

/** Resolves a host name to every address it has (tests give their own, to play DNS tricks). */
export type Resolve = (host: string) => Promise<LookupAddress[]>;

export const systemResolve: Resolve = (host) => dnsLookup(host, { all: true, verbatim: true });

const REFUSED = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) REFUSED.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64],
  // 6to4 and Teredo carry an IPv4 address inside (6to4 in plain view, Teredo obfuscated): where a relay routes them,
  // 2002:7f00:1:: reaches 127.0.0.1. Both are deprecated, so refusing them whole costs no real receiver.
  ['2002::', 16], ['2001::', 32],
] as const) REFUSED.addSubnet(net, bits, 'ipv6');

/** Whether the hub refuses to connect to `address` (an IP address literal) by default. */
export function isRefusedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return REFUSED.check(address, 'ipv4');
  if (family !== 6) return true;
  const embedded = embeddedIpv4(address);
  if (embedded !== undefined) return REFUSED.check(embedded, 'ipv4');
  return REFUSED.check(address, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!hex) return undefined;
  const high = parseInt(hex[1]!, 16);
  const low = parseInt(hex[2]!, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** The URL's host as a bare name or address (IPv6 literals lose their brackets). */
export function urlHost(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/** Throws PW_ERR_WEBHOOK_URL when `raw` is not a URL the hub posts to. */
export function parseWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PulsewireError('PW_ERR_WEBHOOK_URL', 'not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PulsewireError('PW_ERR_WEBHOOK_URL', 'the scheme must be http or https');
  if (url.username !== '' || url.password !== '') throw new PulsewireError('PW_ERR_WEBHOOK_URL', 'no credentials in the URL; the signature authenticates the hub');
  if (url.hash !== '') throw new PulsewireError('PW_ERR_WEBHOOK_URL', 'no #fragment');
  return url;
}

/** Registration: every address the host resolves to must be allowed (PW_ERR_WEBHOOK_ADDRESS_REFUSED names the first that is not). */
export async function checkEndpointAddress(url: URL, resolve: Resolve): Promise<void> {
  const host = urlHost(url);
  let addresses: string[];
  if (isIP(host) !== 0) addresses = [host];
  else {
    try {
      addresses = (await resolve(host)).map((entry) => entry.address);
    } catch (err) {
      throw new PulsewireError('PW_ERR_WEBHOOK_URL', `${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'})`);
    }
  }
  const refused = addresses.find(isRefusedAddress);
  if (refused !== undefined) throw new PulsewireError('PW_ERR_WEBHOOK_ADDRESS_REFUSED', `${host} resolves to ${refused}`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http.request that resolves with `resolve` and refuses to hand
 * out a disallowed address, so the socket is never opened to one. It answers
 * both shapes net asks for (one address, or all of them for family racing).
 */
export function guardedLookup(resolve: Resolve) {
  return (hostname: string, options: LookupOneOptions | LookupAllOptions | number, callback: LookupCallback): void => {
    const all = typeof options === 'object' && options.all === true;
    resolve(hostname).then((addresses) => {
      const refused = addresses.find((entry) => isRefusedAddress(entry.address));
      if (refused) {
        const err = new PulsewireError('PW_ERR_WEBHOOK_ADDRESS_REFUSED', `${hostname} resolves to ${refused.address}`) as unknown as NodeJS.ErrnoException;
        callback(err, '');
        return;
      }
      const first = addresses[0];
      if (!first) {
        callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '');
        return;
      }
      if (all) callback(null, addresses);
      else callback(null, first.address, first.family);
    }, (err: NodeJS.ErrnoException) => callback(err, ''));
  };
}
