/**
 * Throw-away PKI for a test control plane, made with the `openssl` CLI (OpenSSL 3):
 * a CA, the kube-apiserver serving certificate for 127.0.0.1/localhost, an admin client
 * certificate in `system:masters`, and the service-account signing key pair.
 * ECDSA P-256 everywhere: key generation is instant, and kube-apiserver accepts ES256
 * service-account signing keys.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ControlPlanePki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly servingCert: string;
  readonly servingKey: string;
  readonly adminCert: string;
  readonly adminKey: string;
  /** Service-account token signing key (private) and its public key. */
  readonly saKey: string;
  readonly saPub: string;
  /** PEM contents of the CA, admin cert and admin key (for the kubeconfig). */
  readonly pem: { readonly ca: string; readonly adminCert: string; readonly adminKey: string };
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    if (e.code === 'ENOENT') throw new Error('openssl is needed to make the test control plane PKI (apt-get install openssl)');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? String(err)}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function issue(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
): Promise<void> {
  await openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  await writeFile(join(dir, `${name}.ext`), extensions.join('\n') + '\n');
  await openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(8).toString('hex')}`,
      '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`],
    dir,
  );
}

/** Creates the PKI files in `dir` (which must exist). */
export async function createPki(dir: string): Promise<ControlPlanePki> {
  await openssl(
    ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-sha256',
      '-subj', '/CN=meshfork-test-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'],
    dir,
  );
  await Promise.all([
    issue(dir, 'apiserver', '/CN=kube-apiserver', [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      // 10.0.0.1 is the `kubernetes` Service IP in --service-cluster-ip-range=10.0.0.0/24.
      'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
    ]),
    issue(dir, 'admin', '/O=system:masters/CN=meshfork-test-admin', [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
    ]),
    (async () => {
      await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa.key'], dir);
      await openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
    })(),
  ]);
  const [ca, adminCert, adminKey] = await Promise.all(
    ['ca.crt', 'admin.crt', 'admin.key'].map((f) => readFile(join(dir, f), 'utf8')),
  );
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    servingCert: join(dir, 'apiserver.crt'),
    servingKey: join(dir, 'apiserver.key'),
    adminCert: join(dir, 'admin.crt'),
    adminKey: join(dir, 'admin.key'),
    saKey: join(dir, 'sa.key'),
    saPub: join(dir, 'sa.pub'),
    pem: { ca: ca!, adminCert: adminCert!, adminKey: adminKey! },
  };
}
