// The webhook's CA and serving certificate (src/controller/certificates.ts), checked with
// node:crypto's X509Certificate (an implementation other than the one that built them).
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { caBundleOf, issueCertificates, renewalReason, SERVING_LIFETIME_MS } from '../../src/controller/certificates.js';

const now = new Date('2026-11-30T12:00:00Z');
const hosts = ['meshfork-webhook.meshfork-system.svc', '127.0.0.1'];

describe('webhook certificates', () => {
  const material = issueCertificates({ hosts, now });

  it('a serving certificate for every host, signed by a CA, valid for a year from an hour ago', () => {
    const cert = new X509Certificate(material.cert);
    const ca = new X509Certificate(material.caCert);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:meshfork-webhook.meshfork-system.svc, IP Address:127.0.0.1');
    expect(new Date(cert.validFrom).toISOString()).toBe('2026-11-30T11:00:00.000Z');
    expect(new Date(cert.validTo).toISOString()).toBe(new Date(now.getTime() + SERVING_LIFETIME_MS).toISOString().replace(/\.\d+Z$/, '.000Z'));
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(renewalReason(material, hosts, now)).toBeUndefined();
  });

  it('is issued again when missing, expired, in the last third of its life, for another host, or with a foreign key', () => {
    expect(renewalReason(undefined, hosts, now)).toBe('missing');
    expect(renewalReason({ ...material, cert: undefined }, hosts, now)).toBe('missing');
    const expired = issueCertificates({ hosts, now, ca: { cert: material.caCert, key: material.caKey }, servingLifetimeMs: -1000, notBeforeOffsetMs: -2 * 86_400_000 });
    expect(renewalReason(expired, hosts, now)).toBe("expired Nov 30 11:59:59 2026 GMT");
    expect(renewalReason(material, hosts, new Date(now.getTime() + 250 * 86_400_000))).toMatch(/within the last third of its lifetime$/);
    expect(renewalReason(material, [...hosts, 'other.svc'], now)).toBe('not valid for other.svc');
    const other = issueCertificates({ hosts, now });
    expect(renewalReason({ ...material, key: other.key }, hosts, now)).toBe('the key does not match the certificate');
    expect(renewalReason({ ...material, caCert: other.caCert, caKey: other.caKey }, hosts, now)).toBe('not signed by the CA');
    expect(renewalReason({ ...material, cert: 'garbage' }, hosts, now)).toMatch(/^unreadable: /);
  });

  it('re-issuing with the same CA keeps the CA (the caBundle stays valid) and makes a new serving key', () => {
    const again = issueCertificates({ hosts, now, ca: { cert: material.caCert, key: material.caKey } });
    expect(again.caCert).toBe(material.caCert);
    expect(again.key).not.toBe(material.key);
    expect(new X509Certificate(again.cert).verify(new X509Certificate(material.caCert).publicKey)).toBe(true);
  });

  it('the caBundle holds the CA a new CA replaced until that one expires', () => {
    const next = issueCertificates({ hosts, now });
    const both = caBundleOf(next.caCert, material.caCert, now);
    expect(both).toBe(`${next.caCert.trimEnd()}\n${material.caCert.trimEnd()}\n`);
    expect(caBundleOf(next.caCert, undefined, now)).toBe(next.caCert);
    expect(caBundleOf(next.caCert, next.caCert, now)).toBe(next.caCert);
    expect(caBundleOf(next.caCert, 'garbage', now)).toBe(next.caCert);
    expect(caBundleOf(next.caCert, material.cert, now)).toBe(next.caCert); // a serving certificate is no CA
    const expired = issueCertificates({ hosts, now: new Date(now.getTime() - 3 * 86_400_000), caLifetimeMs: 86_400_000 });
    expect(caBundleOf(next.caCert, expired.caCert, now)).toBe(next.caCert);
  });
});
