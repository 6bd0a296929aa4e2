import { describe, expect, it } from 'vitest';
import { forkAffinityLua } from '../../src/lua/index.js';
import { luajitAvailable, runLua, type HeaderLine } from './harness.js';

const KEY = 'mf-key';
const RK = 'abcd1234';
const script = forkAffinityLua({ keyName: KEY, routingKey: RK });
const run = (headers: HeaderLine[], opts?: { legacy?: boolean }) => {
  const r = runLua(script, headers, opts);
  expect(r.error).toBeUndefined();
  return r;
};

describe.skipIf(!luajitAvailable())('fork-affinity.lua under LuaJIT', () => {
  it('adds a baggage header when there is none', () => {
    const r = run([[':path', '/'], ['x-other', 'y']]);
    expect(r.headers).toEqual([[':path', '/'], ['x-other', 'y'], ['baggage', `${KEY}=${RK}`]]);
  });

  it('leaves the request untouched when the key is present (same or any value)', () => {
    for (const value of [`${KEY}=${RK}`, `${KEY}=othersandbox`, `a=b, ${KEY} = v ;p=1, c=d`, `${KEY}=`]) {
      const r = run([['baggage', value]]);
      expect(r.headers).toEqual([['baggage', value]]);
      expect(r.mutations).toBe(0);
    }
  });

  it('appends after other members and keeps them in order', () => {
    const r = run([['baggage', 'a=1, b=2;prop=x,c=3']]);
    expect(r.headers).toEqual([['baggage', `a=1, b=2;prop=x,c=3,${KEY}=${RK}`]]);
  });

  it('sees the key in a repeated baggage header line and leaves all lines untouched', () => {
    const lines: HeaderLine[] = [['baggage', 'a=1'], ['x-y', 'z'], ['baggage', `b=2, ${KEY}=other`]];
    const r = run(lines);
    expect(r.headers).toEqual(lines);
    expect(r.mutations).toBe(0);
  });

  it('joins repeated baggage lines (RFC 9110 list semantics) when it adds the member', () => {
    const r = run([['baggage', 'a=1'], ['baggage', 'b=2']]);
    expect(r.headers).toEqual([['baggage', `a=1,b=2,${KEY}=${RK}`]]);
  });

  it('uses get() (values joined with ",") where getNumValues/getAtIndex are missing', () => {
    expect(run([['baggage', 'a=1'], ['baggage', `${KEY}=x`]], { legacy: true }).mutations).toBe(0);
    expect(run([['baggage', 'a=1']], { legacy: true }).headers).toEqual([['baggage', `a=1,${KEY}=${RK}`]]);
  });

  it('respects member boundaries: properties, prefixes, suffixes and values do not count', () => {
    for (const value of [
      `foo=1;${KEY}=x`, // a property of foo
      `x${KEY}=v`,
      `${KEY}x=v`,
      `foo=${KEY}=v`,
      `${KEY};p=v`, // no '=' before the property
      KEY, // no '=' at all
      `foo=1; ${KEY}=x, bar=2`,
    ]) {
      const r = run([['baggage', value]]);
      expect(r.headers, value).toEqual([['baggage', `${value},${KEY}=${RK}`]]);
    }
  });

  it('does not add when the result would exceed 8192 bytes', () => {
    const member = `${KEY}=${RK}`;
    const fits = `a=${'x'.repeat(8192 - 3 - member.length)}`; // fits + ',' + member = 8192 bytes
    expect(run([['baggage', fits]]).headers).toEqual([['baggage', `${fits},${member}`]]);
    const tooBig = fits + 'x';
    const r = run([['baggage', tooBig]]);
    expect(r.headers).toEqual([['baggage', tooBig]]);
    expect(r.mutations).toBe(0);
  });

  it('does not add a 65th member', () => {
    const members = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v`).join(',');
    expect(run([['baggage', members(63)]]).headers).toEqual([['baggage', `${members(63)},${KEY}=${RK}`]]);
    const r = run([['baggage', members(64)]]);
    expect(r.headers).toEqual([['baggage', members(64)]]);
    expect(r.mutations).toBe(0);
  });

  it('replaces a baggage header that holds only empty members', () => {
    expect(run([['baggage', ' , ,']]).headers).toEqual([['baggage', `${KEY}=${RK}`]]);
    expect(run([['baggage', '']]).headers).toEqual([['baggage', `${KEY}=${RK}`]]);
  });

  it('survives malformed and huge input without Lua errors', () => {
    for (const value of [',,,', '=', ';;=,', '=v', ' '.repeat(60_000), `a=${'='.repeat(60_000)}`, '\t,\t']) {
      expect(runLua(script, [['baggage', value]]).error).toBeUndefined();
    }
  });
});
