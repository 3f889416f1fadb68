/**
 * Every key lashup writes in the replicated store, in one place. A key's value is a map (an
 * ORMap of LWW registers); the fields named here are the map's keys.
 *
 *   overlay-config         field `config`: the overlay configuration the masters committed
 *                          (written by the leading master; read by agents, validated)
 *   overlay/<network>      field <VTEP IPv4>: one agent's overlay entry (written by that agent;
 *                          removed by the master that releases it; validated by src/routes)
 *   cni-usage/<network>    field <agent name>: `{ used, total, exhausted }`, container addresses
 *                          of that agent's Mesos half (written by that agent; read by the API)
 *   docker-usage/<network> field <agent name>: the same for its Docker half, as the local Docker
 *                          daemon reports it (written by that agent; read by the API)
 *   tasks                  field <agent name>: `{ agentIp, tasks: [{ framework, task, ips }] }`,
 *                          that agent's tasks (written by that agent, signed; read by every DNS
 *                          server; removed by the master that releases it)
 *   allocations            field <agent name>: that agent's allocation (its lease) and `by`, the
 *                          master that granted it, signed by that master (written by the master
 *                          that grants it, removed by the one that releases it; read by agents,
 *                          which check other agents' entries against it, see allocations.ts)
 *   vip-addresses          field <name>.<framework>: `{ ip, ip6? }`, a named VIP's addresses as
 *                          the masters' allocator gave them (written by the leading master; read
 *                          by every agent's VIP rules and DNS server, checked against the VIP ranges)
 *
 * Writers go through `writeIfChanged`: an unchanged value is not written again (each write is a
 * delta flooded to the cluster and a journal record).
 */
import { OVERLAY_KEY_PREFIX, overlayKey } from '../routes/index.js';

export { OVERLAY_KEY_PREFIX, overlayKey };

/** The key where masters announce the allocations they grant (see allocations.ts). */
export const ALLOCATIONS_KEY = 'allocations';

/** The key where the leading master publishes the committed overlay configuration. */
export const OVERLAY_CONFIG_KEY = 'overlay-config';
/** The field of `overlay-config` holding the configuration. */
export const OVERLAY_CONFIG_FIELD = 'config';

/** Prefix of the per-network container address usage keys. */
export const CNI_USAGE_PREFIX = 'cni-usage/';

/** Per-agent container address usage of a network: the cluster-wide exhaustion view. */
export const cniUsageKey = (network: string): string => `${CNI_USAGE_PREFIX}${network}`;

/** Prefix of the per-network Docker half usage keys. */
export const DOCKER_USAGE_PREFIX = 'docker-usage/';

/** Per-agent Docker half usage of a network. */
export const dockerUsageKey = (network: string): string => `${DOCKER_USAGE_PREFIX}${network}`;

/** The key of the agents' task records (one field per agent). */
export const TASKS_KEY = 'tasks';

/** The key of the named VIPs' addresses (one field per `<name>.<framework>`). */
export const VIP_ADDRESSES_KEY = 'vip-addresses';
