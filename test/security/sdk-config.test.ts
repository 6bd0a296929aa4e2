/**
 * The SDK takes the same routing-key settings meshfork's config does: a member name matching
 * KEY_NAME_PATTERN (lower case, at most 42 characters) and plain headers that are not reserved
 * (baggage and tracestate are read by member; traceparent, host, content-length, te and the
 * preview-token header are never a key). A setting the mesh would refuse is a TypeError at
 * install, not a silently unmatched name.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KEY_NAME_PATTERN, RESERVED_HEADER_NAMES } from '../../src/planner/routing-key.js';
import * as sdk from '../../src/sdk/index.js';

const NAME42 = 'abcdefghijklmnopqrstuvwxyzabcdefghijklmnop';
const NOT_ALLOWED = 'not allowed: baggage, tracestate, traceparent, host, content-length, te, connection, transfer-encoding, x-meshfork-preview-token';

describe('SDK routing-key settings agree with the mesh', () => {
  afterEach(() => {
    sdk.install({ preset: 'meshfork', headers: [], legacyHeaders: false, outbound: false });
    sdk.uninstall();
  });

  it('member names: KEY_NAME_PATTERN, 42 characters at most', () => {
    expect(sdk.install({ keyName: NAME42, outbound: false }).keyName).toBe(NAME42);
    expect(sdk.headersForSandbox('abcd1234', { keyName: 'a.b-c_d' })).toEqual({ baggage: 'a.b-c_d=abcd1234' });
    for (const bad of [`${NAME42}q`, 'Meshfork-Routing-Key', '-k', 'a=b', 'k~', '']) {
      expect(new RegExp(KEY_NAME_PATTERN).test(bad), bad).toBe(false);
      expect(() => sdk.install({ keyName: bad, outbound: false }), bad).toThrow(
        new TypeError(`meshfork: invalid routing-key member name ${JSON.stringify(bad)} (must match ${KEY_NAME_PATTERN})`),
      );
      expect(() => sdk.headersForSandbox('abcd1234', { keyName: bad }), bad).toThrow(TypeError);
    }
    // a refused name changes nothing
    expect(sdk.routingKeyName()).toBe(NAME42);
  });

  it('plain headers: never a reserved header, in any case', () => {
    for (const h of [...RESERVED_HEADER_NAMES, 'Baggage', 'TraceState']) {
      expect(() => sdk.install({ headers: ['x-ok', h], outbound: false }), h).toThrow(
        new TypeError(`meshfork: ${JSON.stringify(h.toLowerCase())} cannot be a plain routing-key header (${NOT_ALLOWED})`),
      );
    }
    expect(() => sdk.install({ headers: ['x-meshfork-routing-key', 'baggage-x'], outbound: false })).not.toThrow();
  });
});
