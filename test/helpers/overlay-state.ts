/** Hand-written overlay desired states for dataplane tests and benchmarks. */
import { emptyDesiredState, type DesiredState } from '../../src/dataplane/index.js';
import { DEFAULT_VTEP_CONFIG, localState, remoteState, vtepMac, type RemoteAgent, type VtepConfig } from '../../src/vxlan/index.js';

/** Agent `i` (from 1): underlay 192.0.2.i (198.18.x.y beyond 254), VTEP 44.128.x.y, blocks 9.x.y.0/24 and fd01:b:0:0:i::/80. */
export function agent(i: number, options: { ipv6?: boolean } = {}): RemoteAgent & { index: number } {
  const hi = (i >> 8) & 255;
  const lo = i & 255;
  const vtepIp = `44.128.${hi}.${lo}`;
  const underlayIp = i <= 254 ? `192.0.2.${i}` : `198.18.${hi}.${lo}`;
  const ipv6 = options.ipv6 ?? true;
  return {
    index: i,
    underlayIp,
    vtepIp,
    ...(ipv6 ? { vtepIp6: `fd01:a::${i.toString(16)}` } : {}),
    vtepMac: vtepMac(vtepIp),
    subnets: [`9.${hi}.${lo}.0/24`, ...(ipv6 ? [`fd01:b:0:0:${i.toString(16)}::/80`] : [])],
  };
}

/** The local part of agent `i`: VTEP, the dcos bridges (IPv4 halves) and dcos6 bridges (IPv6 halves). */
export function localPart(i: number, config: VtepConfig = DEFAULT_VTEP_CONFIG, options: { ipv6?: boolean; underlayIp?: string } = {}): DesiredState {
  const a = agent(i, options);
  const hi = (i >> 8) & 255;
  const lo = i & 255;
  const ipv6 = options.ipv6 ?? true;
  const h = i.toString(16);
  return localState(config, {
    underlayIp: options.underlayIp ?? a.underlayIp,
    vtepAddress: `${a.vtepIp}/16`,
    ...(ipv6 ? { vtepAddress6: `fd01:a::${h}/64` } : {}),
    networks: [
      { name: 'dcos', mesos: `9.${hi}.${lo}.0/25`, mesosGateway: `9.${hi}.${lo}.1`, docker: `9.${hi}.${lo}.128/25`, dockerGateway: `9.${hi}.${lo}.129` },
      ...(ipv6 ? [{ name: 'dcos6', mesos6: `fd01:b:0:0:${h}::/81`, mesosGateway6: `fd01:b:0:0:${h}::1`, docker6: `fd01:b:0:0:${h}:8000::/81`, dockerGateway6: `fd01:b:0:0:${h}:8000:0:1` }] : []),
    ],
  });
}

/** Agent `self`'s whole desired state with the given remote agents. */
export function overlayState(self: number, remotes: readonly number[], config: VtepConfig = DEFAULT_VTEP_CONFIG, options: { ipv6?: boolean } = {}): DesiredState {
  const state = localPart(self, config, options);
  for (const r of remotes) merge(state, remoteState(config, agent(r, options)));
  return state;
}

export function merge(into: DesiredState, part: DesiredState): DesiredState {
  into.links.push(...part.links);
  into.addresses.push(...part.addresses);
  into.routes.push(...part.routes);
  into.neighbours.push(...part.neighbours);
  into.fdb.push(...part.fdb);
  into.rules.push(...part.rules);
  return into;
}

export { emptyDesiredState };
