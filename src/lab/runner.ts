/**
 * `lashup lab run`: builds the scenario's cluster in network namespaces (src/demo's
 * NetnsCluster: 3 masters, the agents, spare hosts for joins), attaches CNI containers, then
 * plays the steps while a sampler observes every node every `sampleIntervalMs` and the checks
 * (checks.ts) judge each observation. The report (report.ts) holds every violation with its
 * time, the convergence of every event and the samples behind the charts.
 *
 * Convergence of an event: from the moment the lab carried it out to the first observation at
 * which every running node's membership view agrees with what was injected ("membership"),
 * every running agent's kernel routes agree ("kernels"), and a full ping round between the
 * agents' first containers gives what the faults imply ("pings"). A disagreement that outlasts
 * `settleMs` is a violation, whenever it starts.
 *
 * Everything the lab creates it removes at the end (also after a failure); it ends only the
 * daemons it started; every loop is bounded by the scenario's own times.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cidrContains, parseAddress, parseCidr } from '../common/index.js';
import { BUSYBOX, busyboxImageTarball, CNI_PLUGIN_DIR, DOCKERD, type Dockerd, eventually, NetnsCluster, run, unmountUnder } from '../demo/index.js';
import { Checker, INVARIANTS, type Invariant, pingExpected, type Verdict, type Violation } from './checks.js';
import { LabError, LabErrorCode } from './errors.js';
import { faultScript } from './faults.js';
import { findLeader, observe } from './observe.js';
import { MEASURE_NAMES, MEASURES, type LabEvent, type LabReport, type LabSample, type Measure, measured } from './report.js';
import { EVENT_KINDS, MASTERS, agentNames, type Scenario, type Step } from './scenario.js';
import { World } from './world.js';

export interface LabOptions {
  /** argv that runs the lashup CLI (the daemons are `<command> run --config ...`). */
  command: string[];
  /** Progress lines (one per step and per event's convergence). */
  out(text: string): void;
  /** Namespace prefix (default `lxl`). */
  prefix?: string;
}

interface LabContainer {
  agent: string;
  kind: 'cni' | 'docker';
  ip: string;
  /** Its task name (framework `lab`). */
  task: string;
  /** One ping from this container (bounded: one packet, 1 s). */
  ping(ip: string): Promise<boolean>;
}

/** The DNS zone of the lab's daemons (the default `dns.zone`). */
const DNS_ZONE = 'dcos.thisdcos.directory';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether this machine can run the lab's Docker containers: dockerd and busybox-static (the image's only content). */
export function dockerAvailable(): boolean {
  return DOCKERD !== undefined && existsSync(BUSYBOX);
}

/** What the lab needs from the machine; throws LabError (LASHUP_ERR_LAB_UNSUPPORTED) naming what is missing. */
export async function checkLabSupport(scenario?: Scenario): Promise<void> {
  if (scenario?.docker === true && !dockerAvailable())
    throw new LabError(LabErrorCode.Unsupported, 'the scenario asks for Docker containers ("docker": true); install docker.io and busybox-static, or set "docker" to "auto" or false');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new LabError(LabErrorCode.Unsupported, 'lashup lab run needs root (network namespaces, nftables); run it with sudo');
  if ((await run(['nft', '--version'])).code !== 0) throw new LabError(LabErrorCode.Unsupported, 'nft not found; install nftables');
  if (!existsSync(`${CNI_PLUGIN_DIR}/bridge`)) throw new LabError(LabErrorCode.Unsupported, `${CNI_PLUGIN_DIR}/bridge not found; install containernetworking-plugins`);
}

export async function runScenario(scenario: Scenario, options: LabOptions): Promise<LabReport> {
  await checkLabSupport(scenario);
  const lab = new Lab(scenario, options);
  return lab.play();
}

class Lab {
  private readonly t0 = performance.now();
  private readonly startedAt = new Date();
  private readonly agentList: string[];
  private readonly world: World;
  private readonly checker: Checker;
  private cluster: NetnsCluster | undefined;
  private readonly containers: LabContainer[] = [];
  private readonly violations: Violation[] = [];
  private readonly reported = new Set<string>();
  private readonly events: LabEvent[] = [];
  private readonly samples: LabSample[] = [];
  private readonly stepLog: { atMs: number; repetition: number; index: number; text: string }[] = [];
  /** Since when each node's view (membership or routes) disagrees, per `<measure> <node>`. */
  private readonly disagreeing = new Map<string, { sinceMs: number; reported: boolean }>();
  /** Daemons the lab stopped on purpose: their exit is not a crash. */
  private readonly stopping = new Set<string>();
  private nextSpare: number;
  /** Container attachments of joined agents still running; settle waits for them. */
  private readonly attaching: Promise<void>[] = [];
  private attachPending = 0;
  private readonly dockerds: Dockerd[] = [];
  private tornDown: Promise<void> | undefined;
  private tarball: Promise<string> | undefined;
  /** Docker containers besides the CNI ones (the scenario's docker, 'auto' resolved). */
  private readonly docker: boolean;
  /** CNI ADDs that failed, so a retry takes a new container id. */
  private failedAdds = 0;
  private lastEventAtMs = 0;
  private sampling = false;
  private network = 'dcos';

  constructor(
    private readonly scenario: Scenario,
    private readonly options: LabOptions,
  ) {
    this.agentList = agentNames(scenario.agents + scenario.spareAgents);
    this.world = new World(MASTERS, this.agentList);
    this.checker = new Checker(this.world, scenario.falseFailureGraceMs);
    this.nextSpare = scenario.agents;
    this.docker = scenario.containersPerAgent > 0 && (scenario.docker === 'auto' ? dockerAvailable() : scenario.docker);
  }

  private now(): number {
    return Math.round(performance.now() - this.t0);
  }

  private violation(invariant: Invariant, message: string): void {
    // A state that breaks an invariant is seen by every observation while it lasts: recorded once.
    const key = `${invariant} ${message}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    const v = { atMs: this.now(), invariant, message };
    this.violations.push(v);
    this.options.out(`  ! ${(v.atMs / 1000).toFixed(1)} s ${invariant}: ${message}\n`);
  }

  async play(): Promise<LabReport> {
    const s = this.scenario;
    this.options.out(
      `lab ${s.name}: 3 masters, ${s.agents} agents${s.spareAgents > 0 ? ` (+${s.spareAgents} spare)` : ''}, ${s.containersPerAgent} containers per agent, ${s.steps.length} steps x ${s.repeat}\n`,
    );
    this.network = firstNetwork(s.overlay);
    const cluster = await NetnsCluster.create({
      agents: s.agents,
      spareHosts: s.spareAgents,
      command: this.options.command,
      prefix: this.options.prefix ?? 'lxl',
      ...(s.overlay === undefined ? {} : { overlay: s.overlay }),
    });
    this.cluster = cluster;
    // Interrupted (Ctrl-C, SIGTERM): the same teardown, then exit. A past version only destroyed
    // the cluster and left every agent's dockerd running with its mounts.
    const onSignal = (): void => {
      this.sampling = false;
      void this.teardown().then(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let sampler: Promise<void> | undefined;
    let playedMs = 0;
    try {
      for (const name of [...MASTERS, ...this.agentList.slice(0, s.agents)]) this.launched(name);
      this.event('form', 'the cluster starts');
      this.sampling = true;
      sampler = this.sampleLoop();
      await this.settle();
      for (const agent of this.agentList.slice(0, s.agents)) await this.attach(agent);
      for (let rep = 1; rep <= s.repeat; rep++) {
        for (const [index, step] of s.steps.entries()) {
          // A step that cannot be carried out (nft refusing the fault rules, a node that cannot
          // be started) is a violation of the run, reported with the rest; it used to end the
          // run with an error and no report at all.
          await this.perform(step, rep, index).catch((err: unknown) =>
            this.violation('step', `step ${index + 1} (${step.do}) of repetition ${rep} failed: ${err instanceof Error ? err.message : String(err)}`),
          );
        }
        await this.settle();
      }
      this.finalChecks();
    } finally {
      this.sampling = false;
      await sampler;
      // The report's time ends with the last observation, not with the teardown after it.
      playedMs = this.now();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await this.teardown();
    }
    const counts = Object.fromEntries(INVARIANTS.map((i) => [i, this.violations.filter((v) => v.invariant === i).length])) as Record<Invariant, number>;
    return {
      scenario: s,
      startedAt: this.startedAt.toISOString(),
      durationMs: playedMs,
      ok: this.violations.length === 0,
      nodes: [...MASTERS, ...this.agentList.filter((a) => this.world.node(a).started)],
      containers: this.containers.map((c) => ({ agent: c.agent, kind: c.kind, task: c.task, ip: c.ip })),
      invariants: counts,
      violations: this.violations,
      events: this.events,
      steps: this.stepLog,
      faults: this.world.windows.map((w) => ({ ...w })),
      samples: this.samples,
    };
  }

  /** Stops the dockerds, unmounts what they mounted and removes the cluster; once, whoever asks first. */
  private teardown(): Promise<void> {
    this.tornDown ??= (async () => {
      await Promise.all(
        this.dockerds.map(async (d) => {
          await d.docker(['rm', '-f', '-t', '0', 'lab']);
          await d.stop();
        }),
      );
      const cluster = this.cluster as NetnsCluster;
      await unmountUnder(cluster.root);
      await cluster.destroy();
    })();
    return this.tornDown;
  }

  /** Records that the lab started a daemon, and watches for it exiting without being asked to. */
  private launched(name: string): void {
    this.world.started(name, this.now());
    const child = this.cluster?.nodes.get(name)?.child;
    child?.once('exit', (code, signal) => {
      if (this.stopping.has(name) || !this.sampling) return;
      this.world.stopped(name, this.now(), 'killed');
      this.violation('step', `${name}'s daemon exited by itself (${signal ?? `code ${code}`}); last log: ${(this.cluster?.nodes.get(name)?.log ?? '').slice(-300)}`);
    });
  }

  private event(kind: string, label: string): void {
    this.lastEventAtMs = this.now();
    this.events.push({ kind, label, atMs: this.lastEventAtMs });
  }

  private log(rep: number, index: number, text: string): void {
    this.stepLog.push({ atMs: this.now(), repetition: rep, index, text });
    this.options.out(`${(this.now() / 1000).toFixed(1).padStart(7)} s  [${rep}.${index + 1}] ${text}\n`);
  }

  private async resolve(nodes: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const n of nodes) {
      if (n !== 'leader') out.push(n);
      else {
        const leader = await findLeader(this.cluster as NetnsCluster, this.world);
        if (leader === undefined) this.violation('step', 'no master leads Raft, so "leader" names nobody');
        else out.push(leader);
      }
    }
    return out;
  }

  private async perform(step: Step, rep: number, index: number): Promise<void> {
    const cluster = this.cluster as NetnsCluster;
    switch (step.do) {
      case 'kill':
      case 'stop': {
        const nodes = await this.resolve(step.nodes);
        this.log(rep, index, `${step.do} ${nodes.join(', ')}`);
        await Promise.all(nodes.map((n) => this.halt(n, step.do === 'kill' ? 'SIGKILL' : 'SIGTERM')));
        break;
      }
      case 'start': {
        const down = [...this.world.nodes.values()].filter((n) => n.started && !n.running && !n.released).map((n) => n.name);
        const nodes = [...new Set(step.nodes.flatMap((n) => (n === 'down' ? down : [n])))].filter((n) => !this.world.node(n).running);
        this.log(rep, index, `start ${nodes.join(', ') || '(nothing is down)'}`);
        for (const n of nodes) this.begin(n);
        break;
      }
      case 'restart': {
        const nodes = await this.resolve(step.nodes);
        this.log(rep, index, `restart ${nodes.join(', ')}`);
        for (const n of nodes) {
          await this.halt(n, 'SIGTERM');
          this.begin(n);
        }
        break;
      }
      case 'partition':
        this.world.partition(step.groups, step.oneWay, this.now());
        this.log(rep, index, `partition ${step.groups.map((g) => g.join(',')).join(step.oneWay ? ' -/-> ' : ' | ')}`);
        await this.applyFaults();
        break;
      case 'heal':
        this.world.heal(this.now());
        this.log(rep, index, 'heal');
        await this.applyFaults();
        break;
      case 'loss':
        this.world.setLoss(step.between[0], step.between[1], step.percent, this.now());
        this.log(rep, index, `loss ${step.percent}% between ${step.between.join(' and ')}`);
        await this.applyFaults();
        break;
      case 'release':
        for (const n of step.nodes) await this.release(n, rep, index);
        return;
      case 'join': {
        const names = this.agentList.slice(this.nextSpare, this.nextSpare + step.count);
        this.nextSpare += names.length;
        this.log(rep, index, `join ${names.join(', ')}`);
        for (const n of names) this.begin(n);
        this.event('join', `join ${names.join(', ')}`);
        // Their containers attach once they hold a lease (the IPAM plugin needs it), while the next steps play.
        this.attachPending += names.length;
        this.attaching.push(...names.map((n) => this.attach(n).finally(() => this.attachPending--)));
        return;
      }
      case 'overlay':
        this.log(rep, index, `overlay change, restarting ${step.nodes.join(', ')}`);
        for (const n of step.nodes) {
          this.stopping.add(n);
          await cluster.restart(n, step.overlay);
          this.stopping.delete(n);
          this.world.stopped(n, this.now(), 'stopped');
          this.launched(n);
        }
        // Timed from the last restart: the change is in force once every node runs with it.
        this.event('overlay', `overlay change (${step.nodes.length} nodes restarted)`);
        return;
      case 'container': {
        this.log(rep, index, `container on ${step.agent}`);
        const c = await this.attachOne(step.agent);
        if (c !== undefined) {
          this.event('container', `container ${c.task} on ${step.agent}`);
          (this.events.at(-1) as LabEvent).name = { fqdn: `${c.task}.lab.containerip.${DNS_ZONE}`, ip: c.ip };
        }
        return;
      }
      case 'wait':
        this.log(rep, index, `wait ${step.ms} ms`);
        await sleep(step.ms);
        return;
      case 'settle':
        this.log(rep, index, 'settle');
        await this.settle();
        return;
      case 'expect':
        this.log(rep, index, `expect ${step.from} ${step.reachable ? 'reaches' : 'does not reach'} ${step.to}`);
        await this.expect(step.from, step.to, step.reachable);
        return;
    }
    if (EVENT_KINDS.includes(step.do)) this.event(step.do, this.stepLog.at(-1)?.text ?? step.do);
  }

  private async halt(name: string, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    this.stopping.add(name);
    await (this.cluster as NetnsCluster).signal(name, signal);
    this.stopping.delete(name);
    this.world.stopped(name, this.now(), signal === 'SIGKILL' ? 'killed' : 'stopped');
  }

  private begin(name: string): void {
    (this.cluster as NetnsCluster).start(name, Number(name.slice(1)));
    this.launched(name);
  }

  /** Stops the agent (a graceful leave), then releases its addresses on the leading master (--force: the lab does not wait out the grace). */
  private async release(agent: string, rep: number, index: number): Promise<void> {
    this.log(rep, index, `release ${agent}`);
    if (this.world.node(agent).running) await this.halt(agent, 'SIGTERM');
    for (let attempt = 0; attempt < 10; attempt++) {
      const leader = await findLeader(this.cluster as NetnsCluster, this.world);
      if (leader !== undefined) {
        const reply = await (this.cluster as NetnsCluster).api(leader, 'POST', `/v1/allocations/${agent}/release?force=1`).catch((err: Error) => ({ status: 0, body: err.message }));
        if (reply.status === 200) {
          this.world.released(agent);
          this.checker.released(agent);
          this.event('release', `release ${agent}`);
          return;
        }
        if (attempt === 9) this.violation('step', `release of ${agent} refused by ${leader}: ${reply.status} ${reply.body.slice(0, 200)}`);
      }
      await sleep(1000);
    }
    if (!this.world.node(agent).released) this.violation('step', `release of ${agent}: no master led Raft for 10 s`);
  }

  private async applyFaults(): Promise<void> {
    const cluster = this.cluster as NetnsCluster;
    const ipOf = (name: string): string => cluster.net.host(Number(name.slice(1))).ip;
    await Promise.all(
      [...this.world.nodes.keys()].map(async (name) => {
        const host = cluster.net.host(Number(name.slice(1)));
        const result = await cluster.net.nftApply(host, faultScript(this.world, name, ipOf));
        if (result.code !== 0) throw new LabError(LabErrorCode.Step, `nft refused the fault rules of ${name}: ${result.stderr}`, { node: name });
      }),
    );
  }

  /** Attaches the scenario's containers to an agent once it holds a lease (bounded by settleMs). */
  private async attach(agent: string): Promise<void> {
    const cluster = this.cluster as NetnsCluster;
    if (this.scenario.containersPerAgent === 0) return;
    const deadline = this.now() + this.scenario.settleMs;
    // The agent writes its CNI network configuration once it holds a lease.
    const conf = join(cluster.nodes.get(agent)?.dir ?? '', 'net.d', `${this.network}.conflist`);
    while ((cluster.leaseOf(agent) === undefined || !existsSync(conf)) && this.now() < deadline) await sleep(200);
    while (this.containers.filter((c) => c.agent === agent && c.kind === 'cni').length < this.scenario.containersPerAgent) if ((await this.attachOne(agent)) === undefined) break;
    if (this.docker) await this.attachDocker(agent);
  }

  /**
   * A dockerd of the agent's own in its namespace (its own data root and socket, no bridge, no
   * iptables: src/demo/dockerd.ts) and one busybox container on lashup's Docker network for
   * the lab's network, a named task through its labels. Once per agent: the dockerd outlives
   * restarts of the lashup daemon, as on a real node.
   */
  private async attachDocker(agent: string): Promise<void> {
    const cluster = this.cluster as NetnsCluster;
    if (this.containers.some((c) => c.agent === agent && c.kind === 'docker')) return;
    this.tarball ??= busyboxImageTarball(cluster.root);
    let d: Dockerd;
    try {
      d = await cluster.startDockerd(agent);
    } catch (err) {
      this.violation('step', `dockerd on ${agent} did not start: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.dockerds.push(d);
    // lashup's agent creates the Docker network once it holds a lease and dockerd answers.
    const ready = await eventually(async () => (await d.docker(['network', 'inspect', this.network])).code === 0, this.scenario.settleMs, 250);
    const imported = ready ? await d.docker(['import', await this.tarball, 'lashup-lab/busybox:1']) : undefined;
    const task = `${agent}-docker`;
    const started =
      imported?.code === 0
        ? await d.docker(['run', '-d', '--name', 'lab', '--network', this.network, '--label', `lashup.task=${task}`, '--label', 'lashup.framework=lab', 'lashup-lab/busybox:1', 'sleep', '86400'])
        : undefined;
    if (started?.code !== 0) {
      this.violation(
        'step',
        `Docker container on ${agent}: ${!ready ? `no Docker network ${this.network} within ${this.scenario.settleMs} ms` : `${imported?.stderr ?? ''}${started?.stderr ?? ''}`.slice(0, 300)}`,
      );
      return;
    }
    const ip = (await d.docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`, 'lab'])).stdout.trim();
    const pid = Number((await d.docker(['inspect', '--format', '{{.State.Pid}}', 'lab'])).stdout.trim());
    if (!Number.isInteger(pid) || pid <= 0) {
      this.violation('step', `Docker container on ${agent}: no process id from docker inspect`);
      return;
    }
    // Pings enter the container's network namespace directly: a `docker exec` per ping cost
    // ~0.5-1 s of CPU under load, which the pings' convergence time then measured.
    this.containers.push({
      agent,
      kind: 'docker',
      ip,
      task,
      ping: async (to) => (await run(['nsenter', `--net=/proc/${pid}/ns/net`, 'ping', '-n', '-q', '-c', '1', '-W', '1', to], 6000)).code === 0,
    });
  }

  /** One more CNI container on `agent`, a named task (`<agent>-c<k>`, framework `lab`); undefined (and a violation) when the ADD fails. */
  private async attachOne(agent: string): Promise<LabContainer | undefined> {
    const cluster = this.cluster as NetnsCluster;
    const task = `${agent}-c${this.containers.filter((c) => c.agent === agent).length + this.failedAdds + 1}`;
    const out = await cluster
      .cni(agent, 'ADD', task, this.network, `IgnoreUnknown=1;LASHUP_TASK=${task};LASHUP_FRAMEWORK=lab`)
      .catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message, ns: '' }));
    if (out.code !== 0) {
      this.failedAdds++;
      this.violation('step', `CNI ADD of ${task} on ${agent} failed (${out.code}): ${(out.stdout + out.stderr).slice(0, 300)}`);
      return undefined;
    }
    const ip = ((JSON.parse(out.stdout) as { ips?: { address: string }[] }).ips?.[0]?.address ?? '').split('/')[0] ?? '';
    const net = cluster.net;
    const c: LabContainer = { agent, kind: 'cni', ip, task, ping: (to) => net.ping(out.ns, to, 1, 1) };
    this.containers.push(c);
    return c;
  }

  /** Waits until every event converged, or settleMs after the last one. */
  private async settle(): Promise<void> {
    await Promise.all(this.attaching.splice(0));
    const missing = (e: LabEvent): Measure[] => MEASURES.filter((m) => measured(e, m) && e[m] === undefined);
    while (this.events.some((e) => missing(e).length > 0) && this.now() - this.lastEventAtMs < this.scenario.settleMs) await sleep(100);
    const invariantOf: Record<Measure, Invariant> = { membersMs: 'membership', kernelsMs: 'routes', pingsMs: 'reachability', namesMs: 'names' };
    for (const e of this.events) {
      const lacking = missing(e);
      if (e.settleReported === true || lacking.length === 0 || this.now() - e.atMs < this.scenario.settleMs) continue;
      e.settleReported = true;
      this.violation(invariantOf[lacking[0] as Measure], `after "${e.label}", ${lacking.map((m) => MEASURE_NAMES[m]).join(', ')} did not agree within ${this.scenario.settleMs} ms`);
    }
  }

  private async expect(from: string, to: string, reachable: boolean): Promise<void> {
    const a = this.containers.find((c) => c.agent === from);
    const b = this.containers.find((c) => c.agent === to);
    if (a === undefined || b === undefined) {
      this.violation('expectation', `no container on ${a === undefined ? from : to} to ping`);
      return;
    }
    let reached = false;
    // Reachable: up to 5 tries (a loss or a late route may cost one); unreachable: 3 tries, none answered.
    for (let i = 0; i < (reachable ? 5 : 3) && !reached; i++) reached = await a.ping(b.ip);
    if (reached !== reachable) this.violation('expectation', `expected ${from}'s container ${a.ip} ${reachable ? 'to reach' : 'not to reach'} ${to}'s ${b.ip}; it ${reached ? 'did' : 'did not'}`);
  }

  private async sampleLoop(): Promise<void> {
    const cluster = this.cluster as NetnsCluster;
    while (this.sampling) {
      const began = this.now();
      try {
        const obs = await observe(cluster, this.world, () => this.now());
        const verdict = this.checker.evaluate(obs);
        for (const v of verdict.violations) this.violation(v.invariant, v.message);
        this.record(began, obs.atMs, verdict);
        await Promise.all([this.pings(), this.names(began)]);
      } catch (err) {
        this.violation('step', `observation failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      const rest = this.scenario.sampleIntervalMs - (this.now() - began);
      if (rest > 0) await sleep(rest);
    }
  }

  /** `beganMs`: when the observation started; an event carried out after that is not judged by it (it may have read the cluster before the event). */
  private record(beganMs: number, atMs: number, verdict: Verdict): void {
    const members = Object.fromEntries(verdict.members);
    const routes = Object.fromEntries(verdict.routes);
    this.samples.push({ atMs, members, routes });
    const allMembers = [...verdict.members.values()].every(Boolean);
    const allRoutes = [...verdict.routes.values()].every(Boolean);
    for (const e of this.events) {
      if (e.atMs > beganMs) continue;
      if (allMembers && e.membersMs === undefined) e.membersMs = atMs - e.atMs;
      if (allRoutes && e.kernelsMs === undefined) e.kernelsMs = atMs - e.atMs;
    }
    for (const [measure, map] of [
      ['membership', verdict.members],
      ['routes', verdict.routes],
    ] as const) {
      for (const [node, ok] of map) {
        const key = `${measure} ${node}`;
        const d = this.disagreeing.get(key);
        if (ok) this.disagreeing.delete(key);
        else if (d === undefined) this.disagreeing.set(key, { sinceMs: atMs, reported: false });
        else if (!d.reported && atMs - Math.max(d.sinceMs, this.lastEventAtMs) > this.scenario.settleMs) {
          d.reported = true;
          this.violation(measure, `${node}'s ${measure === 'routes' ? 'kernel routes' : 'membership view'} disagreed for over ${this.scenario.settleMs} ms (since ${(d.sinceMs / 1000).toFixed(1)} s)`);
        }
      }
    }
  }

  /** Container events whose name some running agent's DNS server does not answer yet: asks every one. */
  private async names(beganMs: number): Promise<void> {
    const cluster = this.cluster as NetnsCluster;
    const agents = this.world.agents.filter((a) => a.running).map((a) => a.name);
    for (const e of this.events) {
      if (e.name === undefined || e.namesMs !== undefined || e.atMs > beganMs) continue;
      const { fqdn, ip } = e.name;
      const answers = await Promise.all(
        agents.map(async (a) => {
          try {
            const reply = await cluster.api(a, 'GET', `/v1/dns?name=${encodeURIComponent(fqdn)}`, 3000);
            return ((JSON.parse(reply.body) as { A?: string[] }).A ?? []).includes(ip);
          } catch {
            return false;
          }
        }),
      );
      if (answers.every(Boolean)) e.namesMs = this.now() - e.atMs;
    }
  }

  /** Pairs of containers on different agents with an expectation now: each agent's first CNI container and its Docker one. */
  private pairs(): { a: LabContainer; b: LabContainer; want: boolean }[] {
    const firsts = new Map<string, LabContainer>();
    for (const c of this.containers) if (!firsts.has(`${c.agent} ${c.kind}`)) firsts.set(`${c.agent} ${c.kind}`, c);
    const out: { a: LabContainer; b: LabContainer; want: boolean }[] = [];
    for (const a of firsts.values())
      for (const b of firsts.values()) {
        if (a.agent === b.agent) continue;
        const want = pingExpected(this.world, a.agent, b.agent);
        if (want !== undefined) out.push({ a, b, want });
      }
    return out;
  }

  /**
   * While an event has not converged on pings: a full round over every pair (16 at a time).
   * Once settled: `pingsPerSample` random pairs, each retried once; a wrong answer is a violation.
   */
  private async pings(): Promise<void> {
    const pairs = this.pairs();
    const pendingEvents = this.events.filter((e) => e.pingsMs === undefined && measured(e, 'pingsMs'));
    // A joined agent's containers are not attached yet: its pairs would be missing from the round.
    if (this.attachPending > 0) return;
    if (pendingEvents.length > 0 && pairs.length === 0) {
      // Nothing to ping (no containers yet, or one agent left running): not measured.
      for (const e of pendingEvents) e.noPings = true;
      return;
    }
    if (pendingEvents.length > 0) {
      let allOk = true;
      for (let i = 0; i < pairs.length && allOk; i += 16) {
        const results = await Promise.all(pairs.slice(i, i + 16).map(async (p) => (await p.a.ping(p.b.ip)) === p.want));
        allOk = results.every(Boolean);
      }
      if (allOk) {
        const at = this.now();
        for (const e of pendingEvents) e.pingsMs = at - e.atMs;
      }
      return;
    }
    if (pendingEvents.length > 0) return;
    for (let k = 0; k < this.scenario.pingsPerSample && pairs.length > 0; k++) {
      const p = pairs[Math.floor(Math.random() * pairs.length)] as (typeof pairs)[number];
      const ok = (await p.a.ping(p.b.ip)) || (p.want && (await p.a.ping(p.b.ip)));
      // Faults may have changed while the ping ran: judge only when the expectation still holds.
      if (ok !== p.want && pingExpected(this.world, p.a.agent, p.b.agent) === p.want)
        this.violation('reachability', `${p.a.agent}'s container ${p.a.ip} ${p.want ? 'did not reach' : 'reached'} ${p.b.agent}'s ${p.b.ip} after the cluster settled`);
    }
  }

  /** Every container's address is still its own and inside its agent's current block (agents not released). */
  private finalChecks(): void {
    const seen = new Map<string, string>();
    for (const c of this.containers) {
      // A released agent's block, and its containers' addresses with it, may belong to another agent now.
      if (this.world.node(c.agent).released) continue;
      const other = seen.get(c.ip);
      if (other !== undefined) this.violation('unique-addresses', `container address ${c.ip} given to containers on ${other} and ${c.agent}`);
      seen.set(c.ip, c.agent);
      const block = parseCidr((this.cluster as NetnsCluster).leaseOf(c.agent)?.networks[this.network]?.subnet ?? '', false);
      const ip = parseAddress(c.ip);
      if (block === undefined || ip === undefined || !cidrContains(block, ip.family, ip.value))
        this.violation(
          'leases-kept',
          `container ${c.ip} on ${c.agent} is outside its agent's block ${block === undefined ? '(none)' : (this.cluster as NetnsCluster).leaseOf(c.agent)?.networks[this.network]?.subnet}`,
        );
    }
  }
}

/** The network containers attach to: dcos when the overlay has it, else its first IPv4 network. */
function firstNetwork(overlay: Record<string, unknown> | undefined): string {
  const networks = (overlay?.['networks'] as { name?: string; subnet?: string }[] | undefined) ?? [];
  if (networks.length === 0 || networks.some((n) => n.name === 'dcos')) return 'dcos';
  return networks.find((n) => n.subnet !== undefined)?.name ?? 'dcos';
}
