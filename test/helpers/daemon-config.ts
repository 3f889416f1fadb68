/**
 * A daemon configuration for tests that run daemons in this process on 127.0.0.1: a single
 * master m1, any free ports, and every file and socket under `dir/<name>`.
 */
import { join } from 'node:path';
import { parseConfig, type DaemonConfig } from '../../src/daemon/index.js';

export interface TestConfigOptions {
  dir: string;
  key: string;
  label: string;
  /** api.tokenFile (default <dataDir>/api.token). */
  tokenFile?: string;
  /** The masters' names (default ['m1']). */
  masters?: string[];
}

export function localDaemonConfig(o: TestConfigOptions, name: string, role: 'master' | 'agent', underlayIp: string, seeds: string[]): DaemonConfig {
  return parseConfig({
    name,
    role,
    underlayIp,
    dataDir: join(o.dir, name),
    masters: o.masters ?? ['m1'],
    seeds,
    cluster: { keys: [o.key], label: o.label },
    listen: { bindHost: '127.0.0.1', advertiseHost: '127.0.0.1', udpPort: 0, libp2pPort: 0 },
    membership: { profile: 'local' },
    // Port 1 passes validation; tests set 0 (any free port) before starting.
    api: { host: '127.0.0.1', port: 1, socketPath: join(o.dir, name, 'api.sock'), ...(o.tokenFile === undefined ? {} : { tokenFile: o.tokenFile }) },
    cni: { socketPath: join(o.dir, name, 'cni.sock'), confDir: join(o.dir, name, 'net.d') },
    // No Docker daemon listens there: tests never touch the machine's own dockerd.
    docker: { socketPath: join(o.dir, name, 'docker.sock') },
    // Several daemons share 127.0.0.1: any free port, and no upstream (nothing leaves the machine).
    dns: { port: 0, upstreams: ['127.0.0.1:9'] },
  });
}
