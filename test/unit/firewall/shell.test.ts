import { fileURLToPath } from 'node:url';
import t from 'tap';
import { NftShell } from '../../../src/firewall/index.js';

const fake = fileURLToPath(new URL('../../helpers/fake-nft-shell.mjs', import.meta.url));
const shell = (mode: string, timeoutMs = 5000): NftShell => new NftShell({ command: [process.execPath, fake, mode], timeoutMs });

t.test('the nft -i wrapper: success and refusal by the marker, a silent shell times out, a dead one is reported', async (t) => {
  const ok = shell('ok');
  t.teardown(() => ok.close());
  await ok.run('add chain ip t a\nadd rule ip t a counter');
  await t.rejects(ok.run('add bad thing'), { code: 'LASHUP_ERR_FIREWALL_APPLY', message: /unexpected bad/ });
  await ok.run('');
  await Promise.all([ok.run('add chain ip t b'), ok.run('add chain ip t c')]);
  t.equal(ok.starts, 1, 'one shell for every request');

  const silent = shell('silent', 300);
  t.teardown(() => silent.close());
  await t.rejects(silent.run('add chain ip t a'), { code: 'LASHUP_ERR_FIREWALL_APPLY', message: /did not answer within 300 ms/ });
  t.equal(silent.pid, undefined, 'the hung shell is killed');

  const dead = shell('exit');
  await t.rejects(dead.run('add chain ip t a'), { code: 'LASHUP_ERR_FIREWALL_APPLY', message: /exited/ });
  await t.rejects(dead.run('add chain ip t a'), { message: /exited/ }, 'the next request starts another shell');
  t.equal(dead.starts, 2);
});
