import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { forkAffinityLua, ingressGuardLua, luaQuote } from '../../src/lua/index.js';
import { luajitAvailable } from './harness.js';

/** Evaluates Lua expressions with luajit and returns the bytes each one writes. */
function luaStrings(exprs: string[]): Buffer[] {
  const dir = mkdtempSync(join(tmpdir(), 'meshfork-quote-'));
  try {
    const file = join(dir, 'q.lua');
    // Length-prefix every value so any byte (newlines included) round-trips.
    writeFileSync(file, exprs.map((e) => `do local s = ${e}; io.write(#s, ":", s) end`).join('\n'));
    const res = spawnSync(process.env.LUAJIT ?? 'luajit', [file]);
    if (res.status !== 0) throw new Error(String(res.stderr));
    const out: Buffer[] = [];
    let buf = res.stdout;
    while (buf.length > 0) {
      const colon = buf.indexOf(':');
      const len = Number(buf.subarray(0, colon).toString());
      out.push(buf.subarray(colon + 1, colon + 1 + len));
      buf = buf.subarray(colon + 1 + len);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('luaQuote', () => {
  it('keeps printable ASCII and escapes everything else', () => {
    expect(luaQuote('abc-1.2_3')).toBe('"abc-1.2_3"');
    expect(luaQuote('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(luaQuote('\n\0\u00e9')).toBe('"\\010\\000\\195\\169"');
  });

  it.skipIf(!luajitAvailable())('round-trips any string through LuaJIT byte for byte', () => {
    const tricky = ['', '"', '\\', ']]', '\n', '\r\n', '\0', '\u00e91', '"..os.exit(1).."', '\\0491', '\t\u2028'];
    const samples = [...tricky, ...fc.sample(fc.string({ unit: 'binary', maxLength: 40 }), 200)];
    const got = luaStrings(samples.map(luaQuote));
    expect(got.map((b) => b.toString('hex'))).toEqual(samples.map((s) => Buffer.from(s, 'utf8').toString('hex')));
  });
});

describe('generated filters', () => {
  it.skipIf(!luajitAvailable())('compile under LuaJIT', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshfork-compile-'));
    try {
      const scripts = [
        forkAffinityLua({ keyName: 'sd-routing-key', routingKey: 'abcd' }),
        ingressGuardLua({ keyNames: ['a', 'b.c_d-e'], headers: ['x-a', 'uberctx-a'], tokenSha256: [] }),
      ];
      for (const [i, script] of scripts.entries()) {
        const file = join(dir, `s${i}.lua`);
        writeFileSync(file, script);
        const res = spawnSync(process.env.LUAJIT ?? 'luajit', ['-bl', file], { encoding: 'utf8' });
        expect(res.status, res.stderr).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects configuration outside the documented alphabets', () => {
    expect(() => forkAffinityLua({ keyName: 'k', routingKey: 'abc' })).toThrow(/routing key/);
    expect(() => forkAffinityLua({ keyName: 'k', routingKey: 'a'.repeat(33) })).toThrow(/routing key/);
    expect(() => forkAffinityLua({ keyName: '-k', routingKey: 'abcd' })).toThrow(/key name/);
    expect(() => ingressGuardLua({ keyNames: ['k'], headers: ['x-meshfork-preview-token'], tokenSha256: [] })).toThrow();
  });
});
