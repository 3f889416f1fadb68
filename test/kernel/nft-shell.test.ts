/**
 * The long-lived `nft -i` (src/firewall/shell.ts) on a real nftables, in a namespace the test
 * creates: a line of commands is applied, a refused line is reported with nft's words and
 * leaves nothing behind (one transaction), requests queue in order, a shell that was
 * killed is replaced by the next request, and listings equal `nft list table`'s.
 */
import t from 'tap';
import { NftShell } from '../../src/firewall/index.js';
import { kernelTestSkip, must, run } from '../helpers/netns.js';

const skip = await kernelTestSkip();

t.test('nft -i: updates as transactions, refusals with their words, a killed shell replaced', { skip }, async (t) => {
  const ns = `lxs-${process.pid}`;
  await must(['ip', 'netns', 'add', ns]);
  const shell = new NftShell({ command: ['ip', 'netns', 'exec', ns, 'nft'], timeoutMs: 5000 });
  t.teardown(async () => {
    shell.close();
    await run(['ip', 'netns', 'del', ns]);
  });
  const list = async (): Promise<string> => (await run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'ip', 'tt'])).stdout;

  await shell.run('add table ip tt\nadd chain ip tt web\nadd rule ip tt web counter');
  t.match(await list(), /chain web \{\n\s+counter packets 0 bytes 0/, 'applied');
  await t.rejects(
    shell.run('add chain ip tt half\nadd rule ip tt nochain counter'),
    { code: 'LASHUP_ERR_FIREWALL_APPLY', message: /No such file or directory[\s\S]*nochain/ },
    "refused with nft's words",
  );
  t.notMatch(await list(), /chain half/, 'the refused line left nothing: one transaction');
  await Promise.all(Array.from({ length: 10 }, (_, i) => shell.run(`add chain ip tt c${i}`)));
  t.match(await list(), /chain c9/, 'ten queued requests all applied');
  t.equal(shell.starts, 1, 'by one shell');

  // The shell dies: the next request starts another.
  const pid = shell.pid;
  t.type(pid, 'number', 'the shell runs');
  if (pid !== undefined) process.kill(pid, 'SIGKILL');
  await shell.run('add chain ip tt after').catch(() => shell.run('add chain ip tt after'));
  t.match(await list(), /chain after/, 'applied by a new shell');
  t.equal(shell.starts, 2);

  // Listings through the shell: the same text as a spawned `nft list`, counters fresh, an
  // absent table undefined.
  await must(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  await shell.run('add chain ip tt out { type filter hook output priority 0 ; }\nadd rule ip tt out ip daddr 127.0.0.1 counter');
  t.equal(await shell.list('ip', 'tt'), await list(), 'the listing equals nft list table');
  await must(['ip', 'netns', 'exec', ns, 'ping', '-c', '2', '-i', '0.2', '-W', '1', '127.0.0.1']);
  const after = await shell.list('ip', 'tt');
  t.match(after, /ip daddr 127\.0\.0\.1 counter packets [1-9]/, 'counters read fresh');
  t.equal(after, await list(), 'the same text as nft list table');
  t.equal(await shell.list('ip6', 'tt'), undefined, 'a table that does not exist');
  t.equal(shell.starts, 2, 'no new shell for listings');
});
