/**
 * A throwaway PKI for TLS tests, made with the openssl CLI (installed by
 * scripts/setup.sh): a CA, a server certificate for 127.0.0.1, a device
 * client certificate signed by the CA, and one signed by nobody we trust.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type TestPki = {
  dir: string;
  files: { ca: string; serverCert: string; serverKey: string };
  ca: Buffer;
  client: (cn: string, trusted?: boolean) => { cert: Buffer; key: Buffer };
};

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-pki-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const keyAndCsr = (name: string, cn: string) => {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${cn}`);
  };
  const sign = (name: string, caName: string, ext?: string) => {
    const args = ['x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${caName}.crt`), '-CAkey', file(`${caName}.key`),
      '-CAcreateserial', '-out', file(`${name}.crt`), '-days', '2'];
    if (ext) {
      writeFileSync(file(`${name}.ext`), ext);
      args.push('-extfile', file(`${name}.ext`));
    }
    openssl(...args);
  };
  const selfSignedCa = (name: string, cn: string) => {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`), '-days', '2', '-subj', `/CN=${cn}`);
  };
  selfSignedCa('ca', 'Pulsewire Test CA');
  selfSignedCa('rogue-ca', 'Rogue CA');
  keyAndCsr('server', '127.0.0.1');
  sign('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  return {
    dir,
    files: { ca: file('ca.crt'), serverCert: file('server.crt'), serverKey: file('server.key') },
    ca: readFileSync(file('ca.crt')),
    client(cn, trusted = true) {
      const name = `client-${cn}-${trusted ? 't' : 'r'}`;
      keyAndCsr(name, cn);
      sign(name, trusted ? 'ca' : 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
      return { cert: readFileSync(file(`${name}.crt`)), key: readFileSync(file(`${name}.key`)) };
    },
  };
}
