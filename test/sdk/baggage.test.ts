import { describe, expect, it } from 'vitest';
import {
  MAX_BYTES,
  MAX_MEMBERS,
  encodeMember,
  isRoutingKey,
  joinMembers,
  parseBaggage,
  percentDecode,
  routingKeyFromBaggage,
  setRoutingKeyInBaggage,
} from '../../src/sdk/baggage.js';

describe('parseBaggage', () => {
  it('parses members, values, properties and OWS, keeping valid members verbatim', () => {
    const m = parseBaggage(' a=1 ,\tb = x%20y ; p=1;q , c=');
    expect(m.map((x) => [x.key, x.value, x.metadata, x.raw])).toEqual([
      ['a', '1', undefined, 'a=1'],
      ['b', 'x y', ' p=1;q', 'b = x%20y ; p=1;q'],
      ['c', '', undefined, 'c='],
    ]);
  });

  it('keeps the last duplicate, like OpenTelemetry JS', () => {
    expect(parseBaggage('k=1,j=2,k=3').map((x) => `${x.key}=${x.value}`)).toEqual(['j=2', 'k=3']);
  });

  it('skips malformed members and never throws', () => {
    expect(parseBaggage(',,=x, noequals ,k=v,;p').map((x) => x.key)).toEqual(['k']);
    for (const bad of ['%', '\u0000=\u0000', '=', ';;;', 'a=%E0%A4%A', '\ud800=\udc00', 'x'.repeat(100_000)]) {
      expect(() => parseBaggage(bad)).not.toThrow();
    }
  });

  it('decodes invalid UTF-8 escapes to U+FFFD instead of dropping the member (W3C)', () => {
    expect(parseBaggage('k=%E0%A4%A')[0]?.value).toBe('\ufffd%A');
    expect(percentDecode('%FF')).toBe('\ufffd');
    expect(percentDecode('a%2')).toBe('a%2');
    expect(percentDecode('\u{1F600}%FF')).toBe('\u{1F600}\ufffd');
  });

  it('accepts Buffers and arrays of header values (Kafka, gRPC metadata, repeated headers)', () => {
    expect(parseBaggage([Buffer.from('a=1'), 'b=2']).map((x) => x.key)).toEqual(['a', 'b']);
    expect(parseBaggage(Buffer.from('x=y'))[0]?.value).toBe('y');
    expect(parseBaggage(undefined)).toEqual([]);
    expect(parseBaggage(null)).toEqual([]);
  });

  it('marks members that are not W3C-valid for canonical re-encoding', () => {
    const [m] = parseBaggage('k=a"b');
    expect(m?.raw).toBeUndefined();
    expect(encodeMember(m!.key, m!.value, m!.metadata)).toBe('k=a%22b');
  });
});

describe('routing keys', () => {
  it('accepts only [a-z0-9]{4,32}', () => {
    for (const ok of ['abcd', 'a1b2c3', 'x'.repeat(32)]) expect(isRoutingKey(ok)).toBe(true);
    for (const bad of ['abc', 'x'.repeat(33), 'ABCD', 'ab-cd', 'ab cd', '', undefined, 42]) expect(isRoutingKey(bad)).toBe(false);
  });

  it('reads the key only from a whole member with the exact name', () => {
    expect(routingKeyFromBaggage('a=b, meshfork-routing-key = abcd1234 ;p=v')).toBe('abcd1234');
    expect(routingKeyFromBaggage('foo=meshfork-routing-key=abcd1234')).toBeUndefined();
    expect(routingKeyFromBaggage('xmeshfork-routing-key=abcd1234')).toBeUndefined();
    expect(routingKeyFromBaggage('meshfork-routing-key-x=abcd1234')).toBeUndefined();
    expect(routingKeyFromBaggage('foo=1;meshfork-routing-key=abcd1234')).toBeUndefined();
    expect(routingKeyFromBaggage('meshfork-routing-key=ABCD1234')).toBeUndefined();
    expect(routingKeyFromBaggage('sd-routing-key=abcd1234', 'sd-routing-key')).toBe('abcd1234');
  });

  it('setRoutingKeyInBaggage replaces every member of that name and keeps the others verbatim', () => {
    expect(setRoutingKeyInBaggage('meshfork-routing-key=old1,a = 1;p, meshfork-routing-key=old2', 'new1')).toBe(
      'a = 1;p,meshfork-routing-key=new1',
    );
    expect(setRoutingKeyInBaggage(undefined, 'abcd')).toBe('meshfork-routing-key=abcd');
  });
});

describe('W3C limits', () => {
  it(`propagates at most ${MAX_MEMBERS} members, dropping whole members`, () => {
    const texts = Array.from({ length: 100 }, (_, i) => `m${i}=v${i}`);
    const out = joinMembers(texts).split(',');
    expect(out).toHaveLength(MAX_MEMBERS);
    expect(out).toEqual(texts.slice(0, MAX_MEMBERS));
  });

  it(`propagates at most ${MAX_BYTES} bytes and never a partial member`, () => {
    const texts = Array.from({ length: 10 }, (_, i) => `m${i}=${'x'.repeat(1500)}`);
    const out = joinMembers(texts);
    expect(out.length).toBeLessThanOrEqual(MAX_BYTES);
    for (const part of out.split(',')) expect(texts).toContain(part);
    expect(out.split(',')).toHaveLength(5);
  });

  it('budgets the routing key first so a long baggage never pushes it out', () => {
    const texts = Array.from({ length: 80 }, (_, i) => `m${i}=v`);
    texts.push('meshfork-routing-key=abcd');
    const out = joinMembers(texts, texts.length - 1).split(',');
    expect(out).toHaveLength(MAX_MEMBERS);
    expect(out.at(-1)).toBe('meshfork-routing-key=abcd');
    const big = [`a=${'x'.repeat(8180)}`, 'meshfork-routing-key=abcd'];
    expect(joinMembers(big, 1)).toBe('meshfork-routing-key=abcd');
  });

  it('skips a member larger than the whole budget but keeps later ones that fit', () => {
    expect(joinMembers([`a=${'x'.repeat(9000)}`, 'b=1'])).toBe('b=1');
  });
});

describe('encodeMember', () => {
  it('percent-encodes what baggage-octet does not allow, and % itself', () => {
    expect(encodeMember('k', 'a b,c;d%e"\\é')).toBe('k=a%20b%2Cc%3Bd%25e%22%5C%C3%A9');
    expect(encodeMember('k', 'plain-value_1.2')).toBe('k=plain-value_1.2');
    expect(encodeMember('k e', 'v')).toBe('k%20e=v');
    expect(encodeMember('', 'v')).toBeUndefined();
    expect(encodeMember('k', '\ud800')).toBe('k=%EF%BF%BD');
  });

  it('keeps valid properties and drops a member whose properties are invalid', () => {
    expect(encodeMember('k', 'v', 'p=1;q')).toBe('k=v;p=1;q');
    expect(encodeMember('k', 'v', 'p=\n')).toBeUndefined();
  });
});
