/**
 * The `lashup` command line. Every command but `agent`, `keygen` and `demo` talks to the local
 * daemon's API. Exit codes: 0 done; 1 the daemon refused or failed; 2 usage error; 3 the daemon
 * cannot be reached; 4 invalid configuration.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, configReference, Daemon, parseConfigText } from '../daemon/index.js';
import { createLogger } from '../log/index.js';
import { generateClusterKey } from '../net/index.js';
import { runDemo } from '../demo/index.js';
import { ApiUnreachable, call, stream } from './http.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, config: 4 } as const;

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const USAGE: Record<string, string> = {
  '': `usage: lashup <command> [options]

commands:
  agent --config FILE        run the daemon (master or agent, from the config)
  status                     this node: role, members, lease or Raft role, dataplane
  members                    every member with its state and metadata
  kv get KEY | kv watch KEY  read a store key, or stream its changes
  routes                     the dataplane: desired vs programmed, conflicts, counters
  allocations                leases (on a master) or this agent's lease
  allocations release AGENT [--force]
                             free a stopped agent's allocation (on a master); refused while
                             membership sees it running or it stopped less than
                             ipam.releaseGraceMs ago, unless --force
  leave                      make the local daemon leave the cluster and stop
  keygen                     print a new cluster key
  demo [--agents N]          as root: 3 masters and N agents (default 3) in network namespaces,
                             two containers per agent, a ping matrix; removes everything after
  config-reference           every config setting with its default

options:
  --api HOST:PORT            the daemon API (default 127.0.0.1:62080)
  --help                     help for a command`,
  agent: 'usage: lashup agent --config FILE\n\nRuns the daemon. SIGTERM or SIGINT leaves the cluster and stops (a second signal exits at once).',
  status: 'usage: lashup status [--api HOST:PORT]',
  members: 'usage: lashup members [--api HOST:PORT]',
  kv: 'usage: lashup kv get KEY | lashup kv watch KEY [--api HOST:PORT]',
  routes: 'usage: lashup routes [--api HOST:PORT]',
  allocations:
    "usage: lashup allocations [release AGENT [--force]] [--api HOST:PORT]\n\nrelease frees a decommissioned agent's subnet, VTEP address and MAC on a master. It is refused while membership sees the agent alive or suspect, or less than ipam.releaseGraceMs after it left or failed; --force releases anyway (the agent, if it runs, notices, stops advertising its old subnet and asks for a new one).",
  leave: 'usage: lashup leave [--api HOST:PORT]',
  keygen: 'usage: lashup keygen\n\nPrints a new base64 cluster key (32 random bytes) for cluster.keys.',
  'config-reference': 'usage: lashup config-reference',
  demo: 'usage: lashup demo [--agents N]\n\nAs root: builds 3 masters and N agents (default 3, at most 50) in network namespaces joined by a switch namespace, starts real daemons, attaches two containers per agent, pings every pair, prints members, allocations, convergence time and the ping matrix, then removes everything (also on Ctrl-C).',
};

function parseApi(text: string | undefined): { host: string; port: number } | undefined {
  if (text === undefined) return { host: '127.0.0.1', port: 62080 };
  const m = /^(.+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || port < 1 || port > 65535) return undefined;
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** Runs one command; resolves with its exit code. `agent` resolves when the daemon has stopped. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const args = [...argv];
  const help = args.includes('--help') || args.includes('-h');
  const apiIndex = args.indexOf('--api');
  const apiText = apiIndex >= 0 ? args[apiIndex + 1] : undefined;
  if (apiIndex >= 0) args.splice(apiIndex, 2);
  const force = args.includes('--force');
  const positional = args.filter((a) => a !== '--help' && a !== '-h' && a !== '--force');
  const command = positional[0] ?? '';
  if (help || command === '' || command === 'help') {
    io.out(`${USAGE[command === 'help' ? '' : command] ?? USAGE['']}\n`);
    return command === '' && !help ? EXIT.usage : EXIT.ok;
  }
  const api = parseApi(apiText);
  if (api === undefined) {
    io.err(`--api ${JSON.stringify(apiText)} is not valid; expected HOST:PORT, e.g. 127.0.0.1:62080\n`);
    return EXIT.usage;
  }
  const show = async (method: string, path: string): Promise<number> => {
    const reply = await call(api, method, path);
    if (reply.status >= 200 && reply.status < 300) {
      io.out(typeof reply.body === 'string' ? reply.body : `${JSON.stringify(reply.body, null, 2)}\n`);
      return EXIT.ok;
    }
    const body = reply.body as { code?: string; message?: string };
    io.err(`lashup: ${body.message ?? String(reply.body)} (${body.code ?? reply.status})\n`);
    return EXIT.failed;
  };
  try {
    switch (command) {
      case 'agent':
        return await agent(args, io);
      case 'demo': {
        const at = args.indexOf('--agents');
        const agents = at >= 0 ? Number(args[at + 1]) : 3;
        if (!Number.isInteger(agents) || agents < 2 || agents > 50) {
          io.err(`--agents ${JSON.stringify(args[at + 1])} is not valid; expected an integer from 2 to 50\n`);
          return EXIT.usage;
        }
        return await runDemo({ agents, command: [process.execPath, ...process.execArgv, process.argv[1] as string], out: io.out, err: io.err });
      }
      case 'keygen':
        io.out(`${generateClusterKey()}\n`);
        return EXIT.ok;
      case 'config-reference':
        io.out(`${configReference().join('\n')}\n`);
        return EXIT.ok;
      case 'status':
        return await show('GET', '/v1/status');
      case 'members':
        return await show('GET', '/v1/members');
      case 'routes':
        return await show('GET', '/v1/routes');
      case 'leave':
        return await show('POST', '/v1/leave');
      case 'allocations':
        if (positional[1] === undefined) return await show('GET', '/v1/allocations');
        if (positional[1] === 'release' && positional[2] !== undefined) return await show('POST', `/v1/allocations/${encodeURIComponent(positional[2])}/release${force ? '?force=1' : ''}`);
        io.err(`${USAGE['allocations']}\n`);
        return EXIT.usage;
      case 'kv': {
        const [, sub, key] = positional;
        if ((sub !== 'get' && sub !== 'watch') || key === undefined) {
          io.err(`${USAGE['kv']}\n`);
          return EXIT.usage;
        }
        if (sub === 'get') return await show('GET', `/v1/kv/${encodeURIComponent(key)}`);
        return await stream(api, `/v1/kv/${encodeURIComponent(key)}?watch=1`, (event, data) => io.out(`${event} ${data}\n`));
      }
      default:
        io.err(`lashup: unknown command ${JSON.stringify(command)}\n${USAGE['']}\n`);
        return EXIT.usage;
    }
  } catch (err) {
    if (err instanceof ApiUnreachable) {
      io.err(`lashup: ${err.message}\n`);
      return EXIT.unreachable;
    }
    io.err(`lashup: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.failed;
  }
}

async function agent(args: string[], io: Io): Promise<number> {
  const at = args.indexOf('--config');
  const file = at >= 0 ? args[at + 1] : undefined;
  if (file === undefined) {
    io.err(`${USAGE['agent']}\n`);
    return EXIT.usage;
  }
  let config;
  try {
    config = parseConfigText(readFileSync(file, 'utf8'), file);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`lashup: ${file}: ${err.message}\n`);
      return EXIT.config;
    }
    io.err(`lashup: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.config;
  }
  const logger = createLogger({ level: (process.env['LASHUP_LOG_LEVEL'] as typeof config.log.level | undefined) ?? config.log.level });
  const daemon = await Daemon.start(config, { logger });
  return new Promise((resolve) => {
    let signals = 0;
    const stop = (reason: string): void => {
      signals++;
      if (signals > 1) {
        logger.warn('second signal: exiting at once');
        resolve(130);
        return;
      }
      logger.info({ reason }, 'stopping: leaving the cluster');
      const deadline = setTimeout(() => {
        logger.error('stop deadline of 10 s passed; exiting');
        resolve(EXIT.failed);
      }, 10_000);
      deadline.unref();
      void daemon.stop(true).then(() => {
        clearTimeout(deadline);
        resolve(EXIT.ok);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    daemon.onLeaveRequest(() => stop('leave requested through the API'));
  });
}
