/**
 * `lashup-ipam`, the CNI IPAM plugin (specification 1.0.0; GC and STATUS of 1.1): reads the
 * command from CNI_COMMAND and the network configuration from stdin, asks the local daemon over
 * its unix socket, prints the result or the specification's error object on stdout. Pure apart
 * from the injected `ask` (the socket round trip), so every error path is tested directly.
 */
import { CniCode } from './errors.js';

export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export const DEFAULT_SOCKET_PATH = '/run/lashup/cni.sock';

export interface PluginOutput {
  code: number;
  stdout: string;
}

/** Sends one request line to the daemon socket; rejects with a NodeJS error when unreachable. */
export type Ask = (socketPath: string, request: Record<string, unknown>) => Promise<Record<string, unknown>>;

class PluginError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = '',
  ) {
    super(message);
  }
}

export async function runPlugin(env: Readonly<Record<string, string | undefined>>, stdin: string, ask: Ask): Promise<PluginOutput> {
  let cniVersion = '1.0.0';
  try {
    const command = env['CNI_COMMAND'];
    if (command === undefined || command === '') throw new PluginError(CniCode.InvalidEnvironment, 'CNI_COMMAND is not set; expected ADD, DEL, CHECK, VERSION, GC or STATUS');
    if (command === 'VERSION') return { code: 0, stdout: `${JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_VERSIONS })}\n` };
    if (!['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'].includes(command)) throw new PluginError(CniCode.InvalidEnvironment, `CNI_COMMAND = ${JSON.stringify(command)} is not valid; expected ADD, DEL, CHECK, VERSION, GC or STATUS`);
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(stdin) as Record<string, unknown>;
      if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new Error('not an object');
    } catch (err) {
      throw new PluginError(CniCode.DecodeFailure, `the network configuration on stdin is not a JSON object (${(err as Error).message})`);
    }
    if (typeof config['cniVersion'] !== 'string') throw new PluginError(CniCode.InvalidConfig, 'cniVersion is missing from the network configuration');
    cniVersion = config['cniVersion'];
    if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion)) throw new PluginError(CniCode.IncompatibleVersion, `cniVersion ${JSON.stringify(cniVersion)} is not supported; supported: ${SUPPORTED_VERSIONS.join(', ')}`);
    const ipam = config['ipam'] as Record<string, unknown> | undefined;
    if (ipam === undefined || typeof ipam !== 'object' || ipam === null) throw new PluginError(CniCode.InvalidConfig, 'the network configuration has no ipam section');
    if (ipam['type'] !== 'lashup-ipam') throw new PluginError(CniCode.InvalidConfig, `ipam.type = ${JSON.stringify(ipam['type'])}; this plugin is lashup-ipam`);
    const network = ipam['network'] ?? config['name'];
    if (typeof network !== 'string' || network === '') throw new PluginError(CniCode.InvalidConfig, 'ipam.network (or the configuration name) must name the overlay network');
    const socketPath = ipam['socketPath'] ?? DEFAULT_SOCKET_PATH;
    if (typeof socketPath !== 'string' || !socketPath.startsWith('/')) throw new PluginError(CniCode.InvalidConfig, `ipam.socketPath = ${JSON.stringify(socketPath)} is not valid; expected an absolute path`);
    const need = (name: string): string => {
      const v = env[name];
      if (v === undefined || v === '') throw new PluginError(CniCode.InvalidEnvironment, `${name} is not set; ${command} needs it`);
      return v;
    };
    const call = async (request: Record<string, unknown>): Promise<Record<string, unknown>> => {
      let reply: Record<string, unknown>;
      try {
        reply = await ask(socketPath, request);
      } catch (err) {
        throw new PluginError(CniCode.TryAgainLater, `the lashup daemon is not reachable at ${socketPath} (${(err as Error).message}); try again later`);
      }
      if (reply['ok'] === true) return reply;
      const e = (reply['error'] ?? {}) as { cniCode?: number; message?: string; code?: string; details?: unknown };
      throw new PluginError(typeof e.cniCode === 'number' ? e.cniCode : CniCode.IoFailure, e.message ?? 'the daemon refused the request', JSON.stringify({ code: e.code, ...(typeof e.details === 'object' && e.details !== null ? e.details : {}) }));
    };
    switch (command) {
      case 'ADD': {
        const netns = need('CNI_NETNS');
        const reply = await call({ op: 'add', network, containerId: need('CNI_CONTAINERID'), ifname: need('CNI_IFNAME'), netns });
        const a = reply['attachment'] as { address: string; prefixLen: number; gateway: string };
        const v6 = a.address.includes(':');
        const result = {
          cniVersion,
          ips: [{ ...(cniVersion === '0.4.0' ? { version: v6 ? '6' : '4' } : {}), address: `${a.address}/${a.prefixLen}`, gateway: a.gateway }],
          routes: [{ dst: v6 ? '::/0' : '0.0.0.0/0', gw: a.gateway }],
        };
        return { code: 0, stdout: `${JSON.stringify(result)}\n` };
      }
      case 'DEL':
        await call({ op: 'del', network, containerId: need('CNI_CONTAINERID'), ifname: need('CNI_IFNAME') });
        return { code: 0, stdout: '' };
      case 'CHECK':
        await call({ op: 'check', network, containerId: need('CNI_CONTAINERID'), ifname: need('CNI_IFNAME') });
        return { code: 0, stdout: '' };
      case 'GC': {
        const valid = Array.isArray(config['cni.dev/valid-attachments']) ? (config['cni.dev/valid-attachments'] as { containerID?: unknown; ifname?: unknown }[]) : [];
        await call({ op: 'gc', network, valid: valid.map((v) => ({ containerId: v.containerID, ifname: v.ifname })) });
        return { code: 0, stdout: '' };
      }
      default: {
        const reply = await call({ op: 'status' });
        // CNI 1.1: 50 = the plugin is not available (the daemon has no lease yet).
        if (reply['ready'] !== true) throw new PluginError(50, 'the lashup daemon has no lease yet; containers cannot be attached');
        return { code: 0, stdout: '' };
      }
    }
  } catch (err) {
    const e = err instanceof PluginError ? err : new PluginError(CniCode.IoFailure, err instanceof Error ? err.message : String(err));
    return { code: 1, stdout: `${JSON.stringify({ cniVersion, code: e.code, msg: e.message, ...(e.details === '' ? {} : { details: e.details }) })}\n` };
  }
}
