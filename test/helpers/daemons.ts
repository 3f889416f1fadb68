/**
 * Daemons started in the test's process (agents on fake kernels, no nftables), stopped without a
 * goodbye when the test ends; `seedOf` gives the `host:port` others join through.
 */
import type { Test } from 'tap';
import type { FakeKernel } from '../../src/dataplane/index.js';
import { Daemon, type DaemonConfig } from '../../src/daemon/index.js';

export interface DaemonStarter {
  /** Daemons running now (a test that stops one removes it with `forget`). */
  readonly daemons: Daemon[];
  start(config: DaemonConfig, kernel?: FakeKernel): Promise<Daemon>;
  /** Stops `d` without a goodbye (a crash, as far as the others can tell). */
  kill(d: Daemon): Promise<void>;
  seedOf(d: Daemon): string;
}

export function daemonStarter(t: Test): DaemonStarter {
  const daemons: Daemon[] = [];
  t.teardown(() => Promise.all(daemons.map((d) => d.stop(false))));
  return {
    daemons,
    start: async (config, kernel) => {
      const d = await Daemon.start(config, { ...(kernel === undefined ? {} : { kernel }), firewall: false });
      daemons.push(d);
      return d;
    },
    kill: async (d) => {
      daemons.splice(daemons.indexOf(d), 1);
      await d.stop(false);
    },
    seedOf: (d) => `127.0.0.1:${/\/tcp\/(\d+)/.exec(d.node.libp2p.multiaddrs[0] ?? '')?.[1]}`,
  };
}
