import t from 'tap';
import { parseVipDeclaration } from '../../../src/vips/index.js';

t.test('VIP declarations: named and address VIPs, backend ports, protocols, and what is refused', async (t) => {
  t.same(parseVipDeclaration('/web:80'), { kind: 'named', name: 'web', port: 80, protocol: 'tcp', backendPort: 80 });
  t.same(parseVipDeclaration(' /Web-1:80:8080/UDP '), { kind: 'named', name: 'web-1', port: 80, protocol: 'udp', backendPort: 8080 }, 'case-insensitive name and protocol');
  t.same(parseVipDeclaration('1.2.3.4:5000'), { kind: 'address', address: '1.2.3.4', port: 5000, protocol: 'tcp', backendPort: 5000 });
  t.same(parseVipDeclaration('[fd11::1]:443:8443/tcp'), { kind: 'address', address: 'fd11::1', port: 443, protocol: 'tcp', backendPort: 8443 });

  const refused: [string, string | RegExp, string][] = [
    ['web:80', /expected \/<name>:<port>/, 'a name without its slash'],
    ['/web', /expected \/<name>:<port>/, 'no port'],
    ['/web:0', /port "0" is not valid; expected a port from 1 to 65535/, 'port 0'],
    ['/web:65536', /port "65536" is not valid/, 'port above 65535'],
    ['/web:80:99999', /backend port "99999" is not valid/, 'backend port out of range'],
    ['/web:80/sctp', /protocol "sctp" is not valid; expected tcp or udp/, 'another protocol'],
    [`/${'a'.repeat(64)}:80`, /expected one DNS label/, 'a name over the DNS label limit'],
    ['/-web:80', /expected one DNS label/, 'a name starting with -'],
    ['/we_b:80', /expected one DNS label/, 'a character DNS does not allow'],
    ['300.1.1.1:80', /address "300\.1\.1\.1" is not valid/, 'not an address'],
    ['fd11::1:80', /expected \/<name>:<port>/, 'IPv6 without brackets'],
  ];
  for (const [text, message, why] of refused) t.throws(() => parseVipDeclaration(text), { code: 'LASHUP_ERR_VIP_INVALID', message }, why);
  t.throws(() => parseVipDeclaration('9.0.1.7:80', ['9.0.0.0/8']), { code: 'LASHUP_ERR_VIP_IN_OVERLAY', message: /9\.0\.1\.7 lies inside overlay subnet 9\.0\.0\.0\/8/ }, 'inside an overlay subnet');
  t.throws(() => parseVipDeclaration('[fd01:b::5]:80', ['9.0.0.0/8', 'fd01:b::/64']), { code: 'LASHUP_ERR_VIP_IN_OVERLAY' }, 'inside an IPv6 overlay subnet');
  t.equal(parseVipDeclaration('11.0.0.1:80', ['9.0.0.0/8']).address, '11.0.0.1', 'outside is fine');
});
