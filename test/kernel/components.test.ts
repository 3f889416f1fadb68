/**
 * The component contract on a real kernel (issue 16): an agent in its own network namespace,
 * with the netlink kernel (whose notification helper is a child process) and nftables. A start
 * failure injected after the dataplane started leaves no child process, no bound port and no
 * CNI socket; a clean start shows the helper is there to be found.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { generateClusterKey } from '../../src/net/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { kernelTestSkip, run, TestNet } from '../helpers/netns.js';

const skip = await kernelTestSkip();
const helper = fileURLToPath(new URL('../helpers/component-failure.mjs', import.meta.url));

interface Outcome {
  started: boolean;
  children?: number;
  code?: string;
  component?: string;
  message?: string;
  childrenAfter: number;
  tcpFree: boolean[];
  udpFree: boolean;
}

t.test('an agent on a real kernel: a start failure after the dataplane leaves nothing running', { skip, timeout: 120_000 }, async (t) => {
  await lashupCommand(); // builds dist/ when older than src/
  const net = await TestNet.create({ hosts: 1, prefix: 'lxc' });
  const dir = mkdtempSync(join(tmpdir(), 'lashup-kcomp-'));
  t.teardown(async () => {
    await net.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const host = net.host(1);
  const config = join(dir, 'config.json');
  const socketPath = join(dir, 'cni.sock');
  writeFileSync(
    config,
    JSON.stringify({
      name: 'a1',
      role: 'agent',
      underlayIp: host.ip,
      dataDir: join(dir, 'data'),
      masters: ['m1'],
      cluster: { keys: [generateClusterKey()] },
      listen: { bindHost: host.ip, udpPort: 62501, libp2pPort: 62502 },
      api: { host: host.ip, port: 62080, socketPath: join(dir, 'api.sock') },
      cni: { socketPath, confDir: join(dir, 'net.d') },
      log: { level: 'silent' },
    }),
  );
  const attempt = async (failing: string): Promise<Outcome> => {
    const r = await run(['ip', 'netns', 'exec', host.ns, process.execPath, helper, config, failing], 60_000);
    t.equal(r.code, 0, `helper ran (${failing}): ${r.stderr.slice(-500)}`);
    return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Outcome;
  };

  const clean = await attempt('none');
  t.match(clean, { started: true }, 'a clean start');
  t.ok((clean.children ?? 0) >= 1, `the running agent has its netlink helper as a child (${clean.children})`);

  for (const failing of ['overlay', 'firewall', 'cni', 'api']) {
    const o = await attempt(failing);
    t.match(o, { started: false, code: 'LASHUP_ERR_COMPONENT_START', component: failing }, `the error names ${failing}`);
    t.equal(o.childrenAfter, 0, `${failing}: no child process left (the netlink helper stopped): ${JSON.stringify(o)}`);
    t.same(o.tcpFree, [true, true], `${failing}: libp2p and API ports free`);
    t.equal(o.udpFree, true, `${failing}: SWIM port free`);
    t.notOk(existsSync(socketPath), `${failing}: no CNI socket left`);
    t.notOk(existsSync(join(dir, 'api.sock')), `${failing}: no API socket left`);
  }
  // A failed start is not a leave: like a crash, it keeps lashup's nftables tables (a restart
  // adopts them; containers keep their masquerade meanwhile). Only leaving removes them.
  t.match((await run(['ip', 'netns', 'exec', host.ns, 'nft', 'list', 'table', 'ip', 'lashup'])).stdout, /masquerade/, 'a failed start keeps the masquerade tables');
});
