/**
 * `lashup-ipam`, the CNI IPAM plugin (specification 1.0.0; GC and STATUS of 1.1): reads the
 * command from CNI_COMMAND and the network configuration from stdin, asks the local daemon over
 * its unix socket, prints the result or the specification's error object on stdout. Pure apart
 * from the injected `ask` (the socket round trip), so every error path is tested directly.
 *
 * What it refuses, each with the specification's error code and a message naming the value:
 * - GC and STATUS under a cniVersion before 1.1.0 (code 1): they do not exist there, and a GC
 *   from a runtime that does not speak 1.1 has no list of valid attachments to keep;
 * - GC without a well-formed `cni.dev/valid-attachments` list (code 7): read as "nothing is
 *   valid" it would free every address of the network while its containers run (a past bug);
 * - a requested address (`runtimeConfig.ips`, `args.cni.ips`, `IP=` in CNI_ARGS; code 2): the
 *   overlay hands out addresses itself and cannot reserve one, so a silently ignored `--ip`
 *   would give the container an address its owner did not expect;
 * - invalid CNI_CONTAINERID / CNI_IFNAME (code 4, as the specification asks for environment
 *   variables), and a configuration larger than MAX_STDIN_BYTES (code 6);
 * - an invalid or half-given task name (`args.lashup` code 7, CNI_ARGS code 4; see task-name.ts).
 *
 * The result names the daemon's DNS server as the container's resolver (`dns.nameservers`: the
 * bridge gateway) when the daemon listens there; the bridge plugin passes it on to the runtime.
 */
import { CniCode } from './errors.js';
import { TaskNameError, taskNameFromCni, type TaskName } from './task-name.js';

export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export const DEFAULT_SOCKET_PATH = '/run/lashup/cni.sock';
/** Largest network configuration read from stdin, in bytes (real ones are a few kB). */
export const MAX_STDIN_BYTES = 1024 * 1024;

/** CNI_CONTAINERID as the specification allows it (and the daemon's limit of 255 characters). */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

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

const show = (v: unknown): string => (v === undefined ? '(missing)' : (JSON.stringify(v)?.slice(0, 120) ?? String(v)));

/** Whether semantic version `a` is at least `b` (x.y.z, numeric parts). */
function atLeast(a: string, b: string): boolean {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** A Linux interface name as CNI_IFNAME must be: 1-15 bytes, not "." or "..", no "/", ":" or whitespace. */
function validIfname(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

/** The address(es) a runtime asks for, wherever CNI lets it ask; undefined when none. */
function requestedAddresses(config: Record<string, unknown>, cniArgs: string | undefined): { where: string; value: unknown } | undefined {
  const runtimeIps = (config['runtimeConfig'] as { ips?: unknown } | undefined)?.ips;
  if (Array.isArray(runtimeIps) && runtimeIps.length > 0) return { where: 'runtimeConfig.ips', value: runtimeIps };
  const argsIps = ((config['args'] as { cni?: { ips?: unknown } } | undefined)?.cni as { ips?: unknown } | undefined)?.ips;
  if (Array.isArray(argsIps) && argsIps.length > 0) return { where: 'args.cni.ips', value: argsIps };
  for (const pair of (cniArgs ?? '').split(';')) {
    const [key, value] = pair.split('=', 2);
    if (key?.trim() === 'IP' && value !== undefined && value.trim() !== '') return { where: 'CNI_ARGS IP', value: value.trim() };
  }
  return undefined;
}

/**
 * Runs one plugin invocation. `stdinBytes` is how many bytes of input the caller saw: above
 * MAX_STDIN_BYTES it stopped reading, and the invocation is refused.
 */
export async function runPlugin(env: Readonly<Record<string, string | undefined>>, stdin: string, ask: Ask, stdinBytes = stdin.length): Promise<PluginOutput> {
  let cniVersion = '1.0.0';
  try {
    const command = env['CNI_COMMAND'];
    if (command === undefined || command === '') throw new PluginError(CniCode.InvalidEnvironment, 'CNI_COMMAND is not set; expected ADD, DEL, CHECK, VERSION, GC or STATUS');
    if (command === 'VERSION') return { code: 0, stdout: `${JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_VERSIONS })}\n` };
    if (!['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'].includes(command))
      throw new PluginError(CniCode.InvalidEnvironment, `CNI_COMMAND = ${show(command)} is not valid; expected ADD, DEL, CHECK, VERSION, GC or STATUS`);
    if (stdinBytes > MAX_STDIN_BYTES) throw new PluginError(CniCode.DecodeFailure, `the network configuration on stdin is larger than ${MAX_STDIN_BYTES} bytes, the most this plugin reads`);
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(stdin) as Record<string, unknown>;
      if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new Error(`${show(config)} is not an object`);
    } catch (err) {
      throw new PluginError(CniCode.DecodeFailure, `the network configuration on stdin is not a JSON object (${(err as Error).message})`);
    }
    if (typeof config['cniVersion'] !== 'string')
      throw new PluginError(CniCode.InvalidConfig, `cniVersion = ${show(config['cniVersion'])} in the network configuration is not valid; expected one of ${SUPPORTED_VERSIONS.join(', ')}`);
    cniVersion = config['cniVersion'];
    if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion))
      throw new PluginError(CniCode.IncompatibleVersion, `cniVersion ${show(cniVersion)} is not supported; supported: ${SUPPORTED_VERSIONS.join(', ')}`);
    if ((command === 'GC' || command === 'STATUS') && !atLeast(cniVersion, '1.1.0')) {
      throw new PluginError(CniCode.IncompatibleVersion, `${command} exists from CNI 1.1.0; the network configuration says cniVersion ${show(cniVersion)}`);
    }
    const ipam = config['ipam'] as Record<string, unknown> | undefined;
    if (ipam === undefined || typeof ipam !== 'object' || ipam === null) throw new PluginError(CniCode.InvalidConfig, 'the network configuration has no ipam section');
    if (ipam['type'] !== 'lashup-ipam') throw new PluginError(CniCode.InvalidConfig, `ipam.type = ${show(ipam['type'])}; this plugin is lashup-ipam`);
    const network = ipam['network'] ?? config['name'];
    if (typeof network !== 'string' || network === '') throw new PluginError(CniCode.InvalidConfig, `ipam.network (or the configuration name) = ${show(network)} must name the overlay network`);
    const socketPath = ipam['socketPath'] ?? DEFAULT_SOCKET_PATH;
    if (typeof socketPath !== 'string' || !socketPath.startsWith('/')) throw new PluginError(CniCode.InvalidConfig, `ipam.socketPath = ${show(socketPath)} is not valid; expected an absolute path`);
    const need = (name: string): string => {
      const v = env[name];
      if (v === undefined || v === '') throw new PluginError(CniCode.InvalidEnvironment, `${name} is not set; ${command} needs it`);
      return v;
    };
    const containerId = (): string => {
      const v = need('CNI_CONTAINERID');
      if (!CONTAINER_ID.test(v))
        throw new PluginError(CniCode.InvalidEnvironment, `CNI_CONTAINERID = ${show(v)} is not valid; expected 1-255 letters, digits, "_", "." or "-", starting with a letter or digit`);
      return v;
    };
    const ifname = (): string => {
      const v = need('CNI_IFNAME');
      if (!validIfname(v))
        throw new PluginError(CniCode.InvalidEnvironment, `CNI_IFNAME = ${show(v)} is not valid; expected an interface name of 1-15 bytes without "/", ":" or spaces, not "." or ".."`);
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
      throw new PluginError(
        typeof e.cniCode === 'number' ? e.cniCode : CniCode.IoFailure,
        e.message ?? 'the daemon refused the request',
        JSON.stringify({ code: e.code, ...(typeof e.details === 'object' && e.details !== null ? e.details : {}) }),
      );
    };
    switch (command) {
      case 'ADD': {
        const id = containerId();
        const name = ifname();
        const netns = need('CNI_NETNS');
        const requested = requestedAddresses(config, env['CNI_ARGS']);
        if (requested !== undefined) {
          throw new PluginError(
            CniCode.UnsupportedField,
            `${requested.where} = ${show(requested.value)}: lashup-ipam does not hand out requested addresses; every container gets the next free address of its agent's block (the overlay does not let services reserve addresses). Start the container without a static IP.`,
            JSON.stringify({ code: 'LASHUP_ERR_CNI_ADDRESS_REQUESTED', field: requested.where }),
          );
        }
        let named: TaskName | undefined;
        try {
          named = taskNameFromCni(config, env['CNI_ARGS']);
        } catch (err) {
          if (!(err instanceof TaskNameError)) throw err;
          const code = err.where.startsWith('CNI_ARGS') ? CniCode.InvalidEnvironment : CniCode.InvalidConfig;
          throw new PluginError(code, err.message, JSON.stringify({ code: err.code, field: err.where }));
        }
        const reply = await call({ op: 'add', network, containerId: id, ifname: name, netns, ...named });
        const a = reply['attachment'] as { address: string; prefixLen: number; gateway: string };
        const v6 = a.address.includes(':');
        // The resolver: the daemon's DNS server on the bridge gateway, when it listens there.
        const dns = reply['dns'] as { nameservers?: unknown; search?: unknown } | undefined;
        const nameservers = Array.isArray(dns?.nameservers) ? dns.nameservers.filter((n): n is string => typeof n === 'string') : [];
        const result = {
          cniVersion,
          ips: [{ ...(cniVersion === '0.4.0' ? { version: v6 ? '6' : '4' } : {}), address: `${a.address}/${a.prefixLen}`, gateway: a.gateway }],
          routes: [{ dst: v6 ? '::/0' : '0.0.0.0/0', gw: a.gateway }],
          ...(nameservers.length > 0 ? { dns: { nameservers } } : {}),
        };
        return { code: 0, stdout: `${JSON.stringify(result)}\n` };
      }
      case 'DEL':
        await call({ op: 'del', network, containerId: containerId(), ifname: ifname() });
        return { code: 0, stdout: '' };
      case 'CHECK':
        await call({ op: 'check', network, containerId: containerId(), ifname: ifname() });
        return { code: 0, stdout: '' };
      case 'GC': {
        const list = config['cni.dev/valid-attachments'];
        if (!Array.isArray(list)) {
          throw new PluginError(
            CniCode.InvalidConfig,
            `cni.dev/valid-attachments = ${show(list)} is not valid; GC needs the list of attachments still in use (an array of { containerID, ifname }, possibly empty)`,
          );
        }
        const valid = list.map((entry: unknown, i) => {
          const e = entry as { containerID?: unknown; ifname?: unknown } | null;
          if (e === null || typeof e !== 'object' || typeof e.containerID !== 'string' || !CONTAINER_ID.test(e.containerID) || typeof e.ifname !== 'string' || !validIfname(e.ifname)) {
            throw new PluginError(CniCode.InvalidConfig, `cni.dev/valid-attachments[${i}] = ${show(entry)} is not valid; expected { "containerID": ..., "ifname": ... }`);
          }
          return { containerId: e.containerID, ifname: e.ifname };
        });
        await call({ op: 'gc', network, valid });
        return { code: 0, stdout: '' };
      }
      default: {
        const reply = await call({ op: 'status' });
        if (reply['ready'] !== true) throw new PluginError(CniCode.PluginNotAvailable, 'the lashup daemon has no lease yet; containers cannot be attached');
        return { code: 0, stdout: '' };
      }
    }
  } catch (err) {
    const e = err instanceof PluginError ? err : new PluginError(CniCode.IoFailure, err instanceof Error ? err.message : String(err));
    return { code: 1, stdout: `${JSON.stringify({ cniVersion, code: e.code, msg: e.message, ...(e.details === '' ? {} : { details: e.details }) })}\n` };
  }
}
