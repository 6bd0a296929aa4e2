// `meshfork doctor`'s webhook check (webhookChecks in src/cli/cluster/doctor.ts): exact verdicts
// and messages for webhooks disabled, reachable, and not callable under each failurePolicy.
import { describe, expect, it } from 'vitest';
import { webhookChecks, type WebhookConfigurationLike } from '../../src/cli/cluster/doctor.js';

const service = { namespace: 'meshfork-system', name: 'meshfork-webhook' };
const mutating = (caBundle: string | undefined): WebhookConfigurationLike => ({
  kind: 'MutatingWebhookConfiguration',
  metadata: { name: 'meshfork-virtualservices' },
  webhooks: [{ name: 'virtualservices.meshfork.dev', failurePolicy: 'Ignore', clientConfig: { ...(caBundle ? { caBundle } : {}), service } }],
});
const validating: WebhookConfigurationLike = {
  kind: 'ValidatingWebhookConfiguration',
  metadata: { name: 'meshfork-sandboxes' },
  webhooks: [{ name: 'sandboxes.meshfork.dev', failurePolicy: 'Fail', clientConfig: { service } }],
};
const other: WebhookConfigurationLike = { kind: 'ValidatingWebhookConfiguration', metadata: { name: 'istio-validator-istio-system' }, webhooks: [{ name: 'rev.validation.istio.io', clientConfig: {} }] };

describe('doctor: webhooks', () => {
  it('none of meshfork installed: ok, nothing to reach (others ignored)', () => {
    expect(webhookChecks([other], () => 2)).toEqual([{ verdict: 'ok', name: 'webhooks', detail: 'no meshfork admission webhook configurations (webhooks disabled in the chart): nothing to reach' }]);
  });

  it('callable: caBundle set and a ready endpoint', () => {
    expect(webhookChecks([mutating('Q0E='), other], () => 2)).toEqual([
      { verdict: 'ok', name: 'webhooks', detail: 'MutatingWebhookConfiguration meshfork-virtualservices webhook virtualservices.meshfork.dev: caBundle set, Service meshfork-system/meshfork-webhook has 2 ready endpoints' },
    ]);
  });

  it('not callable: warn under failurePolicy Ignore, fail under Fail, saying what is missing', () => {
    expect(webhookChecks([mutating(undefined), validating], (_ns, name) => (name === 'meshfork-webhook' ? 0 : undefined))).toEqual([
      {
        verdict: 'warn',
        name: 'webhooks',
        detail:
          'MutatingWebhookConfiguration meshfork-virtualservices webhook virtualservices.meshfork.dev: no caBundle (the controller writes it once it runs; with cert-manager, its CA injector); its Service meshfork-system/meshfork-webhook has no ready endpoint (is the controller running and ready?): the writes it covers go through without it (failurePolicy Ignore)',
      },
      {
        verdict: 'fail',
        name: 'webhooks',
        detail:
          'ValidatingWebhookConfiguration meshfork-sandboxes webhook sandboxes.meshfork.dev: no caBundle (the controller writes it once it runs; with cert-manager, its CA injector); its Service meshfork-system/meshfork-webhook has no ready endpoint (is the controller running and ready?): the writes it covers are refused (failurePolicy Fail)',
      },
    ]);
    expect(webhookChecks([mutating('Q0E=')], () => undefined)[0]?.detail).toBe(
      'MutatingWebhookConfiguration meshfork-virtualservices webhook virtualservices.meshfork.dev: its Service meshfork-system/meshfork-webhook does not exist: the writes it covers go through without it (failurePolicy Ignore)',
    );
  });
});
