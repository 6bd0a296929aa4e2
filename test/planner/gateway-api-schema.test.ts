/**
 * Every HTTPRoute/GRPCRoute of the Gateway API golden files validates against the OpenAPI schema
 * of the CRDs in sigs.k8s.io/gateway-api (the version tools/istio/go.mod pins, read from the Go
 * module cache). The CEL rules need an API server: the integration suites check those.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { moduleDir, requireModules } from '../support/istio-samples.js';
import { GATEWAY_GOLDEN_CASES } from '../support/golden-cases.js';

const gatewayApi = moduleDir('istio', 'sigs.k8s.io/gateway-api');

function v1Schema(file: string): object {
  const crd = parseAllDocuments(readFileSync(join(gatewayApi as string, 'config/crd/standard', file), 'utf8'))
    .map((d) => d.toJS() as { kind?: string; spec: { versions: Array<{ name: string; schema: { openAPIV3Schema: object } }> } } | null)
    .find((o) => o?.kind === 'CustomResourceDefinition')!;
  return crd.spec.versions.find((v) => v.name === 'v1')!.schema.openAPIV3Schema;
}

describe.skipIf(!requireModules(gatewayApi))('derived routes against the Gateway API CRD schemas', () => {
  it('every derived HTTPRoute and GRPCRoute of the golden files is valid', () => {
    // Kubernetes formats (int32, date-time) are not JSON Schema keywords ajv knows: ignored.
    const ajv = new Ajv({ strict: false, allErrors: true, logger: false });
    const validators: Record<string, ReturnType<typeof ajv.compile>> = {
      HTTPRoute: ajv.compile(v1Schema('gateway.networking.k8s.io_httproutes.yaml')),
      GRPCRoute: ajv.compile(v1Schema('gateway.networking.k8s.io_grpcroutes.yaml')),
    };
    const checked: string[] = [];
    const invalid: unknown[] = [];
    for (const c of GATEWAY_GOLDEN_CASES) {
      const file = new URL(`../golden/${c.name}.golden.yaml`, import.meta.url).pathname;
      for (const o of parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string } })) {
        const validate = validators[o.kind];
        if (validate === undefined) continue;
        checked.push(`${c.name}: ${o.kind} ${o.metadata.name}`);
        if (!validate(o)) invalid.push({ case: c.name, object: o.metadata.name, errors: validate.errors });
      }
    }
    expect(invalid).toEqual([]);
    expect(checked.length).toBeGreaterThanOrEqual(10);
  });
});
