import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ingressGuardLua, PREVIEW_TOKEN_HEADER } from '../../src/lua/index.js';
import { baggageMemberRegex } from '../../src/planner/routing-key.js';
import { luajitAvailable, runLua, type HeaderLine } from './harness.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const TOKEN = 'preview-token-0123456789';
const script = ingressGuardLua({
  keyNames: ['mf-key', 'sd-routing-key'],
  headers: ['x-meshfork-routing-key', 'uberctx-mf-key', 'ot-baggage-mf-key'],
  tokenSha256: [sha256(TOKEN), sha256('another')],
});
const run = (headers: HeaderLine[], opts?: { legacy?: boolean; fault?: string }) => {
  const r = runLua(script, headers, opts);
  expect(r.error).toBeUndefined();
  return r;
};

describe.skipIf(!luajitAvailable())('ingress-guard.lua under LuaJIT', () => {
  it('strips routing-key members from baggage and tracestate and removes the extra headers', () => {
    const r = run([
      [':authority', 'shop.example.com'],
      ['baggage', 'a=1, mf-key=abcd1234;p=1 ,b=2'],
      ['tracestate', 'sd-routing-key=zzzz1234,vendor=opaque'],
      ['x-meshfork-routing-key', 'abcd1234'],
      ['uberctx-mf-key', 'abcd1234'],
      ['ot-baggage-mf-key', 'abcd1234'],
      ['x-keep', 'mf-key=abcd1234'],
    ]);
    expect(r.headers).toEqual([
      [':authority', 'shop.example.com'],
      ['x-keep', 'mf-key=abcd1234'],
      ['baggage', 'a=1,b=2'],
      ['tracestate', 'vendor=opaque'],
    ]);
  });

  it('strips every form the routing regex could accept, and keeps members that only carry the name in a value or property', () => {
    const r = run([['baggage', ' mf-key = v ;p, x=1, xmf-key=2, mf-keyx=3, foo=1;mf-key=4, sd-routing-key=5, mf-key;p=6, mf-key, foo=mf-key']]);
    expect(r.headers).toEqual([['baggage', ' x=1, foo=1;mf-key=4, foo=mf-key']]);
  });

  it('strips members of jaeger-baggage and correlation-context like baggage members', () => {
    const r = run([
      ['jaeger-baggage', 'a=1, mf-key=abcd1234, b=2'],
      ['correlation-context', 'MF%2Dkey=abcd1234;p=1,c=3'],
      ['jaeger-baggage', ' sd-routing-key = abcd1234 '],
      ['correlation-context', '\tmf-key=abcd1234'],
      ['x-keep', '1'],
    ]);
    expect(r.headers).toEqual([
      ['x-keep', '1'],
      ['jaeger-baggage', 'a=1, b=2'],
      ['correlation-context', 'c=3'],
    ]);
    const untouched: HeaderLine[] = [['jaeger-baggage', 'a=1, b=2'], ['correlation-context', 'c=3;p=mf-key']];
    const same = run(untouched);
    expect(same.headers).toEqual(untouched);
    expect(same.mutations).toBe(0);
  });

  it('strips every member whose decoded key contains a key name, in every list header', () => {
    // `mf-key%3Dabcd1234%3B` decodes to `mf-key=abcd1234;`: a propagator that decodes keys and
    // writes them back raw would emit `mf-key=abcd1234;=x`, which the routing regex accepts.
    expect(new RegExp(baggageMemberRegex('mf-key', 'abcd1234')).test('a=1,mf-key=abcd1234;=x')).toBe(true);
    const line = 'a=1,mf-key%3Dabcd1234%3B=x,xmf-key=2,mf-keyx=3,foo;mf-key=4,%78MF%2Dkey%3Bp=5,t@mf-key=6,sd-routing-key-2=7,b=8';
    for (const name of ['baggage', 'tracestate', 'jaeger-baggage', 'correlation-context']) {
      const r = run([[name, line]]);
      expect(r.headers, name).toEqual([[name, 'a=1,b=8']]);
    }
  });

  // Bytes of the characters JavaScript's String.prototype.trim removes (OpenTelemetry JS trims
  // baggage and tracestate keys with it), as UTF-8, plus a raw 0xA0 byte (U+00A0 in Node's latin1
  // header strings) and U+0085 (Go's unicode.IsSpace).
  const utf8 = (cp: number) => Buffer.from(String.fromCodePoint(cp), 'utf8').toString('latin1');
  const TRIMMED = [
    ...['\t', '\n', '\v', '\f', '\r', ' '],
    ...[0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
      0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff, 0x85].map(utf8),
    '\xa0',
  ];
  const runBytes = (headers: HeaderLine[]) => {
    const r = runLua(script, headers, { latin1: true });
    expect(r.error).toBeUndefined();
    return r;
  };

  it('strips keys with any trimmed whitespace or obs-text around them, in baggage and tracestate', () => {
    expect(TRIMMED).toHaveLength(27);
    for (const ws of TRIMMED) {
      for (const member of [`${ws}mf-key=abcd1234`, `mf-key${ws}=abcd1234`, `${ws}${ws}mf-key${ws}=abcd1234;p`]) {
        const r = runBytes([['baggage', `a=1,${member},b=2`], ['tracestate', `${member},v=1`]]);
        expect(r.headers, JSON.stringify(member)).toEqual([['baggage', 'a=1,b=2'], ['tracestate', 'v=1']]);
      }
    }
  });

  it('strips percent-encoded and re-encoded keys, in any case', () => {
    const members = [
      'mf%2Dkey=abcd1234', 'mf%2dkey=abcd1234', '%6Df-key=abcd1234', '%6d%66%2d%6b%65%79=abcd1234',
      'mf%252Dkey=abcd1234', '%25256Df-key=abcd1234', '%20mf-key=abcd1234', 'mf-key%C2%A0=abcd1234',
      '%C2%A0mf-key%09=abcd1234', 'sd%2Drouting%2Dkey=abcd1234', 'mf-key%2B=abcd1234', '+mf-key=abcd1234',
      'MF-KEY=abcd1234', 'Mf-Key=abcd1234', 'SD-Routing-Key=abcd1234', '%4DF-KEY=abcd1234', ' MF%2dKEY =abcd1234',
      // five nested encodings: more than the guard decodes, so stripped as a key (fail closed)
      '%2525252525=1',
    ];
    for (const member of members) {
      const r = run([['baggage', `a=1,${member}`], ['tracestate', `${member},v=1`]]);
      expect(r.headers, member).toEqual([['baggage', 'a=1'], ['tracestate', 'v=1']]);
    }
  });

  it('property: any case, per-character percent-encoding (up to three levels) and junk around the key is stripped', () => {
    const encode = (text: string, levels: number[]) =>
      [...text]
        .map((c, i) => {
          let out = c;
          for (let l = 0; l < (levels[i % levels.length] ?? 0); l++) {
            out = [...out].map((x) => '%' + x.charCodeAt(0).toString(16).padStart(2, '0')).join('');
          }
          return out;
        })
        .join('');
    const arb = fc.record({
      key: fc.constantFrom('mf-key', 'sd-routing-key'),
      upper: fc.array(fc.boolean(), { minLength: 1, maxLength: 14 }),
      levels: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 14 }),
      before: fc.array(fc.constantFrom(...TRIMMED, '+'), { maxLength: 3 }),
      after: fc.array(fc.constantFrom(...TRIMMED, '+'), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(arb, ({ key, upper, levels, before, after }) => {
        const cased = [...key].map((c, i) => (upper[i % upper.length] ? c.toUpperCase() : c)).join('');
        const member = `${before.join('')}${encode(cased, levels)}${after.join('')}=abcd1234`;
        const r = runBytes([['baggage', `a=1,${member}`], ['tracestate', `${member},v=1`]]);
        expect(r.headers, JSON.stringify(member)).toEqual([['baggage', 'a=1'], ['tracestate', 'v=1']]);
      }),
      { numRuns: 60 },
    );
  });

  it('keeps look-alikes whose key no decoding or trimming turns into text containing a key name', () => {
    const line = 'mf-ke=1,f-key=2,mf%2Dk%65x=3,a%20b=5,foo=mf-key,foo=1;mf-key=6,mf_key=7,mf%zzkey=8,%252525=9,m%66key=10';
    const headers: HeaderLine[] = ['baggage', 'tracestate', 'jaeger-baggage', 'correlation-context'].map((n) => [n, line]);
    const r = run(headers);
    expect(r.headers).toEqual(headers);
    expect(r.mutations).toBe(0);
  });

  it('always removes the Jaeger and OpenTracing forms of every key name, in any case', () => {
    const bare = ingressGuardLua({ keyNames: ['mf-key', 'sd-routing-key'], headers: [], tokenSha256: [] });
    const r = runLua(bare, [
      ['Uberctx-Mf-Key', 'abcd1234'],
      ['OT-BAGGAGE-MF-KEY', 'abcd1234'],
      ['uberctx-sd-routing-key', 'abcd1234'],
      ['ot-baggage-sd-routing-key', 'abcd1234'],
      ['uberctx-other', 'abcd1234'],
      ['X-MESHFORK-ROUTING-KEY', 'abcd1234'],
    ]);
    expect(r.error).toBeUndefined();
    expect(r.headers).toEqual([['uberctx-other', 'abcd1234'], ['x-meshfork-routing-key', 'abcd1234']]);
    const configured = run([['X-Meshfork-Routing-Key', 'abcd1234'], ['x-other', '1']]);
    expect(configured.headers).toEqual([['x-other', '1']]);
  });

  it('strips keys in every repeated line and drops lines left empty', () => {
    const r = run([['baggage', 'mf-key=a'], ['baggage', 'c=3, sd-routing-key=b'], ['baggage', 'd=4']]);
    expect(r.headers).toEqual([['baggage', 'c=3'], ['baggage', 'd=4']]);
  });

  it('strips with the get() fallback where getNumValues/getAtIndex are missing', () => {
    const r = run([['baggage', 'a=1'], ['baggage', 'mf-key=x']], { legacy: true });
    expect(r.headers).toEqual([['baggage', 'a=1']]);
  });

  it('keeps routing keys for a valid preview token and never forwards the token', () => {
    const r = run([
      ['baggage', 'mf-key=abcd1234'],
      [PREVIEW_TOKEN_HEADER, TOKEN],
      ['x-meshfork-routing-key', 'abcd1234'],
    ]);
    expect(r.headers).toEqual([
      ['baggage', 'mf-key=abcd1234'],
      ['x-meshfork-routing-key', 'abcd1234'],
    ]);
  });

  it('removes an invalid token and strips as for any outsider', () => {
    for (const bad of ['wrong', TOKEN + 'x', TOKEN.toUpperCase(), sha256(TOKEN), '', 'x'.repeat(5000)]) {
      const r = run([['baggage', 'mf-key=abcd1234,a=1'], [PREVIEW_TOKEN_HEADER, bad]]);
      expect(r.headers, bad).toEqual([['baggage', 'a=1']]);
    }
  });

  it('accepts a valid token on any repeated credential line', () => {
    const r = run([['baggage', 'mf-key=k'], [PREVIEW_TOKEN_HEADER, 'nope'], [PREVIEW_TOKEN_HEADER, 'another']]);
    expect(r.headers).toEqual([['baggage', 'mf-key=k']]);
  });

  it('computes SHA-256 like node:crypto across padding boundaries', () => {
    for (const len of [0, 1, 3, 54, 55, 56, 57, 63, 64, 65, 119, 120, 200, 512]) {
      const token = Array.from({ length: len }, (_, i) => String.fromCharCode(33 + ((i * 7) % 90))).join('');
      const guard = ingressGuardLua({ keyNames: ['k'], headers: [], tokenSha256: [sha256(token)] });
      const ok = runLua(guard, [['baggage', 'k=v'], [PREVIEW_TOKEN_HEADER, token]]);
      expect(ok.error).toBeUndefined();
      expect(ok.headers, `length ${len}`).toEqual([['baggage', 'k=v']]);
    }
  });

  it('leaves requests without routing keys untouched (no header mutation at all)', () => {
    const lines: HeaderLine[] = [['baggage', 'a=1,,b=2'], ['tracestate', 'v=1'], ['x-other', '1']];
    const r = run(lines);
    expect(r.headers).toEqual(lines);
    expect(r.mutations).toBe(0);
    expect(r.logs).toEqual([]);
  });

  it('keeps other members byte for byte, including empty and malformed ones', () => {
    const r = run([['baggage', 'a=1,, =, ;;, noequals ,mf-key=x, b=%20;p,']]);
    expect(r.headers).toEqual([['baggage', 'a=1,, =, ;;, noequals , b=%20;p,']]);
  });

  it('survives malformed and huge input without Lua errors', () => {
    const huge = Array.from({ length: 4000 }, (_, i) => (i % 2 ? `k${i}=v` : 'mf-key=x')).join(',');
    for (const value of [',,,', '=', ';;=,', '=v', ' '.repeat(60_000), `a=${'='.repeat(60_000)}`, '\t,\t', huge]) {
      const r = run([['baggage', value], ['tracestate', value]]);
      for (const [, v] of r.headers) expect(v).not.toMatch(/(^|,)[ \t]*mf-key[ \t]*=/);
    }
  });

  it('fails closed: if the guard raises, every carrier is removed and the error logged', () => {
    for (const fault of ['getAtIndex', 'getNumValues']) {
      const r = run(
        [
          ['baggage', 'a=1,mf-key=x'],
          ['tracestate', 'v=1'],
          ['jaeger-baggage', 'mf-key=x'],
          ['correlation-context', 'mf-key=x'],
          ['x-meshfork-routing-key', 'x'],
          [PREVIEW_TOKEN_HEADER, TOKEN],
          ['x-other', '1'],
        ],
        { fault },
      );
      expect(r.headers).toEqual([['x-other', '1']]);
      expect(r.logs).toEqual([['Err', expect.stringContaining(`injected fault in ${fault}`)]]);
    }
    for (const fault of ['getAtIndex', 'getNumValues']) {
      const legacy = run([['uberctx-sd-routing-key', 'x'], ['ot-baggage-sd-routing-key', 'x'], ['baggage', 'a=1']], { fault });
      expect(legacy.headers).toEqual([]);
    }
  });
});
