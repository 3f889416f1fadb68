import t from 'tap';
import { canonicalIp, formatIp, isIp, parseIp } from '../../../src/common/index.js';

t.test('IPv4 parses strictly', async (t) => {
  t.same(parseIp('192.0.2.1'), { family: 4, bytes: Uint8Array.of(192, 0, 2, 1) });
  for (const bad of ['192.0.2', '192.0.2.1.5', '256.0.0.1', '01.2.3.4', '1.2.3.-4', ' 1.2.3.4', '1.2.3.4 ', '', 'a.b.c.d']) {
    t.equal(parseIp(bad), undefined, JSON.stringify(bad));
  }
  t.ok(isIp('10.0.0.1', 4));
  t.notOk(isIp('10.0.0.1', 6));
});

t.test('IPv6 parses RFC 4291 forms and formats RFC 5952', async (t) => {
  const cases: [string, string][] = [
    ['fd01:b::', 'fd01:b::'],
    ['FD01:000B:0000:0000:0000:0000:0000:0001', 'fd01:b::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
  ];
  for (const [input, canonical] of cases) t.equal(canonicalIp(input), canonical, input);
  for (const bad of [':::', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::', '1:2:3:4:5:6:7::8:9', '::1.2.3', 'x']) {
    t.equal(parseIp(bad), undefined, JSON.stringify(bad));
  }
  t.equal(parseIp(5 as never), undefined);
  t.throws(() => formatIp(new Uint8Array(5)), RangeError);
  t.equal(formatIp(Uint8Array.of(10, 0, 0, 1)), '10.0.0.1');
});
