import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { groupId, loadOrCreateToken } from '../../../src/daemon/api-credentials.js';

t.test('the API token is created once (mode 0600), then read back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'data', 'api.token');
  const token = loadOrCreateToken(path);
  t.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  t.equal(statSync(path).mode & 0o777, 0o600, 'readable by its owner only');
  t.equal(loadOrCreateToken(path), token, 'the same token after a restart');
  t.not(loadOrCreateToken(join(dir, 'other.token')), token, 'another file, another token');
  writeFileSync(path, 'short\n');
  t.throws(() => loadOrCreateToken(path), { code: 'LASHUP_ERR_API_TOKEN', message: /does not hold a usable token; expected 16 to 512 characters/ });
  t.equal(readFileSync(path, 'utf8'), 'short\n', 'a bad token file is reported, not replaced');
  t.throws(() => loadOrCreateToken(dir), { code: 'LASHUP_ERR_API_TOKEN', message: /cannot read the API token file/ }, 'a directory is not a token file');
});

t.test('the socket group: a name from the group file, or a number', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-group-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'group');
  writeFileSync(file, 'root:x:0:\nlashup:x:998:alice,bob\n');
  t.equal(groupId('lashup', file), 998);
  t.equal(groupId('1234', file), 1234);
  t.throws(() => groupId('nobody-here', file), { code: 'LASHUP_ERR_API_SOCKET_GROUP', message: /api\.socketGroup = "nobody-here": no such group/ });
  t.throws(() => groupId('x', join(dir, 'missing')), { code: 'LASHUP_ERR_API_SOCKET_GROUP' });
});
