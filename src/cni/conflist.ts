/**
 * The CNI network configuration lashup writes per overlay network: the reference bridge plugin
 * on `m-<network>` (gateway on, no masquerade - lashup's nftables table does that - hairpin, the
 * overlay MTU) chained with lashup-ipam. Written atomically, and only when it changes.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bridgeNames } from '../vxlan/index.js';

export function conflist(network: string, mtu: number, socketPath: string): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: network,
    plugins: [
      {
        type: 'bridge',
        bridge: bridgeNames(network).mesos,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        mtu,
        ipam: { type: 'lashup-ipam', network, socketPath },
      },
    ],
  };
}

/** Writes `<dir>/<network>.conflist` if its content differs; returns whether it wrote. */
export function writeConflist(dir: string, network: string, mtu: number, socketPath: string): boolean {
  const path = join(dir, `${network}.conflist`);
  const text = `${JSON.stringify(conflist(network, mtu, socketPath), null, 2)}\n`;
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return false;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
  return true;
}
