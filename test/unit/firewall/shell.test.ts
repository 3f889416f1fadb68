import { fileURLToPath } from 'node:url';
import t from 'tap';
import { NftCli, NftShell } from '../../../src/firewall/index.js';

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

t.test('the nft -i wrapper lists tables: the text, absent tables, a listing whose end comes after its marker', async (t) => {
  const ok = shell('ok');
  t.teardown(() => ok.close());
  t.equal(await ok.list('ip', 'present'), 'table ip present {\n\tchain a {\n\t\tcounter packets 3 bytes 180\n\t}\n}\n');
  t.equal(await ok.list('ip6', 'absent'), undefined, 'a table that does not exist');
  t.equal(await ok.list('ip', 'split'), 'table ip split {\n\tchain a {\n\t}\n}\n', 'waited for the last line');
  // Listings and updates share the queue, in order, and stdout never leaks into an update.
  const [a, , b] = await Promise.all([ok.list('ip6', 'present'), ok.run('add chain ip t x'), ok.list('ip', 'split')]);
  t.match(a, /^table ip6 present \{/);
  t.match(b, /^table ip split \{[\s\S]*\n\}\n$/);
  await t.rejects(ok.run('add bad thing'), { message: /nft refused an update: .*unexpected bad/ });
  t.equal(ok.starts, 1, 'one shell for all of it');

  const silent = shell('silent', 300);
  t.teardown(() => silent.close());
  await t.rejects(silent.list('ip', 'present'), { code: 'LASHUP_ERR_FIREWALL_APPLY', message: /did not answer within 300 ms/ });
});

t.test('NftCli lists through its shell, and through a spawned nft when the shell cannot answer', async (t) => {
  // The spawned stand-in prints an empty table of the family it is asked for (`list table FAMILY NAME`).
  const spawned = ['sh', '-c', 'printf "table %s spawned {\\n}\\n" "$3"', 'nft'];
  const ok = shell('ok');
  t.teardown(() => ok.close());
  const viaShell = new NftCli({ table: 'present', command: spawned, shell: ok });
  const listed = await viaShell.listRaw();
  t.match(listed.ip, /^table ip present \{/, 'the shell listed ip');
  t.match(listed.ip6, /^table ip6 present \{/, 'and ip6');
  t.equal(ok.listingFailures, 0);

  const silent = shell('silent', 200);
  t.teardown(() => silent.close());
  const fallback = new NftCli({ table: 'present', command: spawned, shell: silent });
  t.same(await fallback.listRaw(), { ip: 'table ip spawned {\n}\n', ip6: 'table ip6 spawned {\n}\n' }, 'spawned listings instead');
  t.equal(silent.listingFailures, 2, 'each counted by the shell');
});
