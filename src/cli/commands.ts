/**
 * The `lashup` command line. `run` starts the daemon; `keygen`, `config-reference` and `demo`
 * work alone; every other command talks to the local daemon's API. Exit codes: 0 done; 1 the
 * daemon refused or failed; 2 usage error; 3 the daemon cannot be reached; 4 invalid
 * configuration.
 *
 * Arguments are parsed by `node:util` parseArgs in strict mode: `--api=HOST:PORT` and
 * `--api HOST:PORT` both work, and an unknown option, an option a command does not take or an
 * extra argument is a usage error (they used to be kept silently).
 */
import { systemdNotify } from './systemd.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, configReference, Daemon, LASHUP_VERSION, parseConfigText } from '../daemon/index.js';
import { createLogger } from '../log/index.js';
import { generateClusterKey } from '../net/index.js';
import { runDemo } from '../demo/index.js';
import { convergenceScenario, runLab, validateLab } from '../lab/index.js';
import { ApiUnreachable, call, stream, type ApiEndpoint } from './http.js';
import type { CodeCacheResult } from './code-cache.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, config: 4 } as const;

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** How this process started, for the daemon's log and metrics. */
export interface StartInfo {
  /** What became of the build's code cache (code-cache.ts); absent when not run from the bundle. */
  codeCache?: CodeCacheResult;
}

const OPTIONS = {
  api: { type: 'string' },
  socket: { type: 'string' },
  'token-file': { type: 'string' },
  config: { type: 'string' },
  agents: { type: 'string' },
  force: { type: 'boolean' },
  out: { type: 'string' },
  repeat: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;
type OptionName = keyof typeof OPTIONS;

interface CommandSpec {
  usage: string;
  /** Options the command takes besides --help. */
  options: readonly OptionName[];
  /** Positional arguments after the command: [min, max]. */
  args: readonly [number, number];
}

/** How a command reaches the daemon: the socket (default) or TCP with the token. */
const API_OPTIONS: readonly OptionName[] = ['api', 'socket', 'token-file'];

const RUN_USAGE = 'usage: lashup run --config FILE\n\nRuns the daemon (master or agent, from the config). SIGTERM or SIGINT leaves the cluster and stops (a second signal exits at once).';

const COMMANDS: Record<string, CommandSpec> = {
  run: { usage: RUN_USAGE, options: ['config'], args: [0, 0] },
  agent: { usage: `${RUN_USAGE}\n\n\`lashup agent\` is the old name of \`lashup run\`, kept as an alias for a while.`, options: ['config'], args: [0, 0] },
  status: { usage: 'usage: lashup status [API]', options: API_OPTIONS, args: [0, 0] },
  members: { usage: 'usage: lashup members [API]', options: API_OPTIONS, args: [0, 0] },
  kv: { usage: 'usage: lashup kv get KEY | lashup kv watch KEY [API]', options: API_OPTIONS, args: [2, 2] },
  routes: { usage: 'usage: lashup routes [API]', options: API_OPTIONS, args: [0, 0] },
  policy: {
    usage:
      "usage: lashup policy [API]\n\nThe isolation between overlay networks in force on this agent: each network's policy (allowFrom, allowHosts, allowOutbound), the nftables rules, and the packets of new connections dropped per (from, to) pair.",
    options: API_OPTIONS,
    args: [0, 0],
  },
  vips: {
    usage:
      'usage: lashup vips [API]\n\nEvery VIP this node knows: its address and port (named VIPs with their DNS name <name>.<framework>.l4lb.<zone>), its backends (task, agent, container address and port) and, on an agent, the new connections each backend got through this agent; named VIPs still waiting for an address; declarations left out, with their code and value; the state of the VIP rules.',
    options: API_OPTIONS,
    args: [0, 0],
  },
  dns: {
    usage:
      "usage: lashup dns NAME [API]\n\nWhat this node's DNS server answers for NAME and why: for a task name of the zone, the A and AAAA answers and every record behind them (the agent that published it, whether it is withheld because membership declares that agent failed); for a name outside the zone, the upstream resolvers it is forwarded to.",
    options: API_OPTIONS,
    args: [1, 1],
  },
  docker: {
    usage:
      "usage: lashup docker [API]\n\nThe agent's Docker networks: whether the Docker daemon answers, what was created, removed or recreated, and conflicts (a foreign network of an overlay network's name, or lashup's network changed while containers are attached).",
    options: API_OPTIONS,
    args: [0, 0],
  },
  allocations: {
    usage:
      "usage: lashup allocations [release AGENT [--force]] [API]\n\nrelease frees a decommissioned agent's subnet, VTEP address and MAC on a master. It is refused while membership sees the agent alive or suspect, or less than ipam.releaseGraceMs after it left or failed; --force releases anyway (the agent, if it runs, notices, stops advertising its old subnet and asks for a new one).",
    options: [...API_OPTIONS, 'force'],
    args: [0, 2],
  },
  leave: { usage: 'usage: lashup leave [API]', options: API_OPTIONS, args: [0, 0] },
  keygen: { usage: 'usage: lashup keygen\n\nPrints a new base64 cluster key (32 random bytes) for cluster.keys.', options: [], args: [0, 0] },
  'config-reference': { usage: 'usage: lashup config-reference', options: [], args: [0, 0] },
  demo: {
    usage:
      'usage: lashup demo [--agents N]\n\nAs root: builds 3 masters and N agents (default 3, at most 50) in network namespaces joined by a switch namespace, starts real daemons, attaches two containers per agent, pings every pair, prints members, allocations, convergence time and the ping matrix, then removes everything (also on Ctrl-C).',
    options: ['agents'],
    args: [0, 0],
  },
  lab: {
    usage:
      "usage: lashup lab run SCENARIO.json [--out DIR] | lashup lab validate SCENARIO.json | lashup lab convergence --agents N [--repeat K] [--out DIR]\n\nrun (root): builds the scenario's cluster (3 masters, its agents, CNI containers) in network namespaces, plays its steps (kill, stop, start, restart, partition, heal, loss, release, join, overlay, container, wait, settle, expect) while checking the invariants every sampleIntervalMs, and writes DIR/report.json and DIR/report.html (default DIR: ./lab-<name>-<time>). Exit 0 when every invariant held, 1 when one did not, 4 for an invalid scenario. The format: schemas/lab-scenario.schema.json; ready scenarios: scenarios/. validate: checks the file only. convergence (root): the standard route-convergence benchmark as a scenario on 3 masters and N agents (default 4), K times (default 3): a new agent joins, a container starts under a name, an agent is SIGKILLed and started again, the new agent is released; the same report, with p50/p99 per event.",
    options: ['out', 'agents', 'repeat'],
    args: [1, 2],
  },
};

const USAGE = `usage: lashup <command> [options]

commands:
  run --config FILE          run the daemon (master or agent, from the config); \`agent\` is an old alias
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
  lab run SCENARIO [--out DIR]
                             as root: play a chaos scenario on a namespace cluster, check the
                             invariants, write an HTML and JSON report; exit 1 on a violation
  lab validate SCENARIO      check a scenario file
  lab convergence --agents N [--repeat K]
                             as root: the route-convergence benchmark (join, named container,
                             SIGKILL, release) with the same report
  config-reference           every config setting with its default

options (API stands for them):
  --socket PATH              the daemon's API socket (default /run/lashup/api.sock)
  --api HOST:PORT            the daemon's TCP API instead, with the token of
  --token-file FILE          (default /var/lib/lashup/api.token; or LASHUP_API_TOKEN)
  --help, -h                 help for a command
  --version                  print lashup's version`;

function parseApi(text: string): { host: string; port: number } | undefined {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || port < 1 || port > 65535) return undefined;
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

const DEFAULT_SOCKET = '/run/lashup/api.sock';
const DEFAULT_TOKEN_FILE = '/var/lib/lashup/api.token';

/**
 * The endpoint the options name: the socket unless --api is given; over TCP the token comes from
 * LASHUP_API_TOKEN, --token-file, or the default file (absent: no token, and the daemon says 401).
 */
function endpoint(values: Values, io: Io): ApiEndpoint | undefined {
  if (values.api === undefined) {
    if (values['token-file'] !== undefined) {
      io.err('lashup: --token-file goes with --api HOST:PORT (the socket needs no token)\n');
      return undefined;
    }
    return { socketPath: values.socket ?? DEFAULT_SOCKET };
  }
  if (values.socket !== undefined) {
    io.err('lashup: give --socket or --api, not both\n');
    return undefined;
  }
  const tcp = parseApi(values.api);
  if (tcp === undefined) {
    io.err(`lashup: --api ${JSON.stringify(values.api)} is not valid; expected HOST:PORT, e.g. 127.0.0.1:62080\n`);
    return undefined;
  }
  const fromEnv = process.env['LASHUP_API_TOKEN'];
  if (fromEnv !== undefined && fromEnv !== '' && values['token-file'] === undefined) return { ...tcp, token: fromEnv };
  const file = values['token-file'] ?? DEFAULT_TOKEN_FILE;
  try {
    return { ...tcp, token: readFileSync(file, 'utf8').trim() };
  } catch (err) {
    if (values['token-file'] !== undefined) {
      io.err(`lashup: cannot read the token file ${file}: ${(err as Error).message}\n`);
      return undefined;
    }
    return { ...tcp, token: undefined };
  }
}

type Values = { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

/** Runs one command; resolves with its exit code. `run` resolves when the daemon has stopped. */
export async function run(argv: readonly string[], io: Io, start: StartInfo = {}): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] });
  } catch (err) {
    io.err(`lashup: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const [command = '', ...args] = positionals;
  if (values.version === true) {
    io.out(`${LASHUP_VERSION}\n`);
    return EXIT.ok;
  }
  const spec = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (command === '' || command === 'help') {
    io.out(`${USAGE}\n`);
    return command === '' && values.help !== true ? EXIT.usage : EXIT.ok;
  }
  if (spec === undefined) {
    io.err(`lashup: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (values.help === true) {
    io.out(`${spec.usage}\n`);
    return EXIT.ok;
  }
  const misplaced = (Object.keys(values) as OptionName[]).filter((o) => o !== 'help' && !spec.options.includes(o));
  if (misplaced.length > 0) {
    io.err(`lashup: --${misplaced[0]} does not apply to ${command}\n${spec.usage}\n`);
    return EXIT.usage;
  }
  if (args.length < spec.args[0] || args.length > spec.args[1]) {
    io.err(`lashup: ${command} takes ${spec.args[1] === 0 ? 'no arguments' : `${spec.args[0]} to ${spec.args[1]} arguments`}; found ${args.map((a) => JSON.stringify(a)).join(' ')}\n${spec.usage}\n`);
    return EXIT.usage;
  }
  const api = endpoint(values, io);
  if (api === undefined) return EXIT.usage;
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
        io.err('lashup: `lashup agent` is now `lashup run`; `agent` stays as an alias for a while\n');
        return await daemon(values.config, io, start);
      case 'run':
        return await daemon(values.config, io, start);
      case 'demo': {
        const agents = values.agents === undefined ? 3 : Number(values.agents);
        if (!Number.isInteger(agents) || agents < 2 || agents > 50) {
          io.err(`lashup: --agents ${JSON.stringify(values.agents)} is not valid; expected an integer from 2 to 50\n`);
          return EXIT.usage;
        }
        return await runDemo({ agents, command: [process.execPath, ...process.execArgv, process.argv[1] as string], out: io.out, err: io.err });
      }
      case 'lab': {
        const [sub, file] = args as [string, string | undefined];
        const wrong = (why: string): number => {
          io.err(`lashup: ${why}\n${spec.usage}\n`);
          return EXIT.usage;
        };
        const command = [process.execPath, ...process.execArgv, process.argv[1] as string];
        const outDir = values.out === undefined ? {} : { outDir: values.out };
        if (sub === 'convergence') {
          if (file !== undefined) return wrong('lab convergence takes no scenario file');
          const agents = values.agents === undefined ? 4 : Number(values.agents);
          const repeat = values.repeat === undefined ? 3 : Number(values.repeat);
          if (!Number.isInteger(agents) || agents < 2 || agents > 32) return wrong(`--agents ${JSON.stringify(values.agents)} is not valid; expected an integer from 2 to 32`);
          if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) return wrong(`--repeat ${JSON.stringify(values.repeat)} is not valid; expected an integer from 1 to 20`);
          return await runLab({ file: convergenceScenario(agents, repeat), ...outDir, command, out: io.out, err: io.err });
        }
        if (sub !== 'run' && sub !== 'validate') return wrong(`lab ${JSON.stringify(sub)} is not a lab command; expected run, validate or convergence`);
        if (file === undefined) return wrong(`lab ${sub} needs a scenario file`);
        if (values.agents !== undefined || values.repeat !== undefined) return wrong('--agents and --repeat go with lab convergence; a scenario file says its own');
        if (sub === 'validate') return validateLab(file, io.out, io.err);
        return await runLab({ file, ...outDir, command, out: io.out, err: io.err });
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
      case 'docker':
        return await show('GET', '/v1/docker');
      case 'policy':
        return await show('GET', '/v1/policy');
      case 'vips':
        return await show('GET', '/v1/vips');
      case 'dns':
        return await show('GET', `/v1/dns?name=${encodeURIComponent(args[0] as string)}`);
      case 'leave':
        return await show('POST', '/v1/leave');
      case 'allocations': {
        const [sub, agent] = args;
        if (sub === undefined && values.force !== true) return await show('GET', '/v1/allocations');
        if (sub === 'release' && agent !== undefined) return await show('POST', `/v1/allocations/${encodeURIComponent(agent)}/release${values.force === true ? '?force=1' : ''}`);
        io.err(`${spec.usage}\n`);
        return EXIT.usage;
      }
      default: {
        // kv: the only command left (COMMANDS is the list).
        const [sub, key] = args as [string, string];
        if (sub !== 'get' && sub !== 'watch') {
          io.err(`lashup: kv ${JSON.stringify(sub)} is not a kv command; expected get or watch\n${spec.usage}\n`);
          return EXIT.usage;
        }
        if (sub === 'get') return await show('GET', `/v1/kv/${encodeURIComponent(key)}`);
        return await stream(api, `/v1/kv/${encodeURIComponent(key)}?watch=1`, (event, data) => io.out(`${event} ${data}\n`));
      }
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

async function daemon(file: string | undefined, io: Io, start: StartInfo): Promise<number> {
  if (file === undefined) {
    io.err(`lashup: run needs --config FILE\n${RUN_USAGE}\n`);
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
  const daemon = await Daemon.start(config, { logger, ...(start.codeCache === undefined ? {} : { codeCache: start.codeCache }) });
  // Readiness for systemd (Type=notify) and the log: checked four times a second until it holds.
  const readyTimer = setInterval(() => {
    const readiness = daemon.readiness();
    if (!readiness.ready) return;
    clearInterval(readyTimer);
    logger.info({ role: config.role }, 'ready');
    void systemdNotify('ready', `${config.role} ${config.name} ready`).then((r) => {
      if (r.error !== undefined) logger.warn({ error: r.error }, 'could not tell systemd the daemon is ready');
    });
  }, 250);
  return new Promise((resolve) => {
    let signals = 0;
    const stop = (reason: string): void => {
      clearInterval(readyTimer);
      signals++;
      if (signals > 1) {
        logger.warn('second signal: exiting at once');
        resolve(130);
        return;
      }
      logger.info({ reason }, 'stopping: leaving the cluster');
      void systemdNotify('stopping', `leaving the cluster (${reason})`);
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
