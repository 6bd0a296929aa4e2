/**
 * The webhook server's serving certificate, kept valid:
 *
 *  - self-issued (default): the CA and serving certificate live in one Secret of the controller's
 *    namespace (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`, type kubernetes.io/tls). Every check
 *    (at start, then every `checkMs`) reads it; when it is missing, unreadable, expired, in the
 *    last third of its lifetime or not valid for the webhook's hosts (certificates.ts
 *    renewalReason), a new serving certificate is issued (by the same CA while the CA is usable)
 *    and written with a resourceVersion check (replicas race: the loser reads the winner's on its
 *    next check). The CA is then patched into `caBundle` of every webhook of the
 *    MutatingWebhookConfiguration and ValidatingWebhookConfiguration named `configuration`, also
 *    when something else (a `helm upgrade`) reset it. When a new CA replaces a still valid one,
 *    the old CA is kept in the Secret (`ca-previous.crt`) and in the caBundle until it expires,
 *    so replicas serving a certificate of the old CA until their next check are still trusted.
 *  - from files (cert-manager): `tls.crt` and `tls.key` of a mounted Secret are read at every
 *    check; cert-manager renews them and its cainjector writes the caBundle.
 *
 * Whatever a check finds is handed to `onCertificate` when it differs from what is served, so
 * the HTTPS server switches to it without a restart.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { apiStatus } from '../cluster/write.js';
import { caBundleOf, caUsable, issueCertificates, renewalReason, SECRET_KEYS, type TlsMaterial } from './certificates.js';
import type { Logger } from './log.js';
import { describeError } from './reconciler.js';

export interface ServingCertificate {
  readonly cert: string;
  readonly key: string;
}

export type CertificateSource =
  | { readonly kind: 'secret'; readonly namespace: string; readonly name: string; readonly hosts: readonly string[]; readonly configuration: string }
  | { readonly kind: 'files'; readonly dir: string };

export interface WebhookTlsOptions {
  readonly objects: KubernetesObjectApi;
  readonly source: CertificateSource;
  readonly onCertificate: (certificate: ServingCertificate) => void;
  readonly log: Logger;
  /** @default 10_000 */
  readonly checkMs?: number;
  readonly now?: () => Date;
}

type SecretObject = KubernetesObject & { data?: Record<string, string>; type?: string };
type WebhookConfiguration = KubernetesObject & { webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string } }> };

const CONFIGURATION_KINDS = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'] as const;
/** Key of the Secret holding the CA a new CA replaced (kept in the caBundle until it expires). */
export const PREVIOUS_CA_KEY = 'ca-previous.crt';

function decode(data: Record<string, string> | undefined, key: string): string | undefined {
  const value = data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

function materialOf(secret: SecretObject | undefined): Partial<TlsMaterial> | undefined {
  if (secret === undefined) return undefined;
  const out: Partial<Record<keyof TlsMaterial, string>> = {};
  for (const [field, key] of Object.entries(SECRET_KEYS) as Array<[keyof TlsMaterial, string]>) {
    const value = decode(secret.data, key);
    if (value !== undefined) out[field] = value;
  }
  return out;
}

export class WebhookTls {
  private served: ServingCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly now: () => Date;

  constructor(private readonly options: WebhookTlsOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** The certificate being served (undefined before the first successful check). */
  get certificate(): ServingCertificate | undefined {
    return this.served;
  }

  /**
   * Checks until a certificate is served (a check that lost a write race to another replica
   * serves nothing; the next one reads the winner's), then one check every `checkMs`. Throws
   * when a check fails, or when five in a row served nothing.
   */
  async start(): Promise<ServingCertificate> {
    for (let attempt = 0; this.served === undefined; attempt++) {
      if (attempt === 5) throw new Error('no webhook certificate after 5 checks: other replicas keep replacing it');
      await this.check();
    }
    this.timer = setInterval(() => void this.checkLogged(), this.options.checkMs ?? 10_000);
    this.timer.unref();
    return this.served!;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private async checkLogged(): Promise<void> {
    try {
      await this.check();
    } catch (error) {
      this.options.log.error({ error: describeError(error) }, 'webhook certificate check failed');
    }
  }

  /** One check; concurrent calls share it. */
  check(): Promise<void> {
    this.checking ??= (this.options.source.kind === 'files' ? this.checkFiles(this.options.source.dir) : this.checkSecret(this.options.source)).finally(() => (this.checking = undefined));
    return this.checking;
  }

  private serve(certificate: ServingCertificate): void {
    if (this.served?.cert === certificate.cert && this.served.key === certificate.key) return;
    this.served = certificate;
    this.options.onCertificate(certificate);
  }

  private async checkFiles(dir: string): Promise<void> {
    const [cert, key] = await Promise.all([readFile(join(dir, 'tls.crt'), 'utf8'), readFile(join(dir, 'tls.key'), 'utf8')]);
    this.serve({ cert, key });
  }

  private async read<T extends KubernetesObject>(apiVersion: string, kind: string, name: string, namespace?: string): Promise<T | undefined> {
    try {
      return (await this.options.objects.read({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } })) as T;
    } catch (error) {
      if (apiStatus(error) === 404) return undefined;
      throw error;
    }
  }

  private async checkSecret(source: Extract<CertificateSource, { kind: 'secret' }>): Promise<void> {
    const now = this.now();
    const secret = await this.read<SecretObject>('v1', 'Secret', source.name, source.namespace);
    const stored = materialOf(secret);
    const reason = renewalReason(stored, source.hosts, now);
    let material = stored as TlsMaterial;
    let previousCa = decode(secret?.data, PREVIOUS_CA_KEY);
    if (reason !== undefined) {
      const keepCa = stored?.caCert !== undefined && stored.caKey !== undefined && caUsable({ caCert: stored.caCert, caKey: stored.caKey }, now);
      material = issueCertificates({ hosts: source.hosts, now, ...(keepCa ? { ca: { cert: stored.caCert!, key: stored.caKey! } } : {}) });
      // A new CA: the one it replaces is still trusted (caBundleOf) until it expires.
      if (!keepCa && stored?.caCert !== undefined) previousCa = stored.caCert;
      const data = Object.fromEntries((Object.entries(SECRET_KEYS) as Array<[keyof TlsMaterial, string]>).map(([field, key]) => [key, Buffer.from(material[field]).toString('base64')]));
      if (previousCa !== undefined) data[PREVIOUS_CA_KEY] = Buffer.from(previousCa).toString('base64');
      const body: SecretObject = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/tls',
        metadata: {
          name: source.name,
          namespace: source.namespace,
          labels: { 'app.kubernetes.io/managed-by': 'meshfork', 'app.kubernetes.io/component': 'webhook-certificate' },
          ...(secret?.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
        },
        data,
      };
      try {
        if (secret === undefined) await this.options.objects.create(body);
        else await this.options.objects.replace(body);
      } catch (error) {
        // Another replica wrote it first: its certificate is read at the next check.
        if (apiStatus(error) === 409) return;
        throw error;
      }
      this.options.log.info({ secret: `${source.namespace}/${source.name}`, reason, newCa: !keepCa }, 'webhook certificate issued');
    }
    // The API server trusts the new CA before the new certificate is served (a new CA served
    // first would fail every call until the caBundle caught up).
    try {
      await this.patchCaBundles(source.configuration, caBundleOf(material.caCert, previousCa, now));
    } finally {
      this.serve({ cert: material.cert, key: material.key });
    }
  }

  /** Sets `caBundle` (PEM bundle `pem`) of every webhook of both configurations named `name` (absent ones are skipped). */
  private async patchCaBundles(name: string, pem: string): Promise<void> {
    const caBundle = Buffer.from(pem).toString('base64');
    for (const kind of CONFIGURATION_KINDS) {
      const configuration = await this.read<WebhookConfiguration>('admissionregistration.k8s.io/v1', kind, name);
      if (configuration === undefined) continue;
      const webhooks = configuration.webhooks ?? [];
      if (webhooks.every((w) => w.clientConfig?.caBundle === caBundle)) continue;
      const body = { ...configuration, apiVersion: 'admissionregistration.k8s.io/v1', kind, webhooks: webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle } })) };
      try {
        await this.options.objects.replace(body);
      } catch (error) {
        if (apiStatus(error) === 409) continue; // changed meanwhile: the next check patches it
        throw error;
      }
      this.options.log.info({ object: `${kind} ${name}` }, 'caBundle written');
    }
  }
}
