/**
 * A Docker daemon of its own inside an agent's network namespace (tests and the demo): its
 * data, exec root, pid file and API socket under one directory, no bridge of its own and no
 * iptables rules (`--bridge=none --iptables=false --ip6tables=false`). Started with `nsenter
 * --net=...`, not `ip netns exec`: the latter remounts /sys, and dockerd then fails with
 * "Devices cgroup isn't mounted". Ends only the process it started.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DockerEngine } from '../docker/index.js';
import { eventually, must, run } from './netns.js';

/** Where Debian's busybox-static puts its one binary (the images' only content). */
export const BUSYBOX = '/usr/bin/busybox';

/**
 * A tarball for `docker import` (there is no registry here): busybox-static with the applets
 * containers use linked to it. Returns its path (under `dir`).
 */
export async function busyboxImageTarball(dir: string): Promise<string> {
  const root = join(dir, 'image');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  for (const tool of ['sh', 'ping', 'ping6', 'ip', 'sleep', 'cat', 'nslookup', 'wget', 'nc']) if (!existsSync(join(root, 'bin', tool))) symlinkSync('busybox', join(root, 'bin', tool));
  const tarball = join(dir, 'image.tar');
  await must(['tar', '-C', root, '-cf', tarball, '.'], 60_000);
  return tarball;
}

/** Unmounts what dockerd left mounted under `root` (its overlay mounts), deepest first. */
export async function unmountUnder(root: string): Promise<void> {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${root}/`));
  for (const m of mounts.sort((a, b) => b.length - a.length)) await run(['umount', '-l', m]);
}

/** Where Debian's docker.io puts the daemon. */
export const DOCKERD = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((p) => existsSync(p));
/** The CLI from the same package, so client and daemon match (another may come first on PATH). */
const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export interface DockerRun {
  code: number;
  stdout: string;
  stderr: string;
}

export class Dockerd {
  private log = '';

  private constructor(
    readonly socketPath: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr?.on('data', (c: Buffer) => {
      this.log = (this.log + c.toString()).slice(-20_000);
    });
  }

  /** The API socket a daemon started for `dir` listens on (`<dir>/docker.sock`). */
  static socketPathFor(dir: string): string {
    return join(dir, 'docker.sock');
  }

  /** Starts dockerd in namespace `ns`, keeping its state under `dir`; resolves once it answers. */
  static async start(ns: string, dir: string, timeoutMs = 60_000): Promise<Dockerd> {
    if (DOCKERD === undefined) throw new Error('dockerd is not installed (Debian package docker.io)');
    mkdirSync(dir, { recursive: true });
    const socketPath = Dockerd.socketPathFor(dir);
    const child = spawn(
      'nsenter',
      [
        `--net=/run/netns/${ns}`,
        DOCKERD,
        '--bridge=none',
        '--iptables=false',
        '--ip6tables=false',
        '--data-root',
        join(dir, 'data'),
        '--exec-root',
        join(dir, 'exec'),
        '--pidfile',
        join(dir, 'docker.pid'),
        '-H',
        `unix://${socketPath}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const daemon = new Dockerd(socketPath, child);
    const api = new DockerEngine({ socketPath, timeoutMs: 2000 });
    const up = await eventually(
      () =>
        api.ping().then(
          () => true,
          () => false,
        ),
      timeoutMs,
      200,
    );
    if (!up) {
      await daemon.stop();
      throw new Error(`dockerd in ${ns} did not answer within ${timeoutMs} ms: ${daemon.log.slice(-2000)}`);
    }
    return daemon;
  }

  /** The daemon's last log lines. */
  get output(): string {
    return this.log;
  }

  /** Runs the docker CLI against this daemon. */
  docker(args: string[], timeoutMs = 60_000): Promise<DockerRun> {
    return new Promise((resolve) => {
      execFile(DOCKER_CLI, ['-H', `unix://${this.socketPath}`, ...args], { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
      );
    });
  }

  /** Stops the daemon (SIGTERM; SIGKILL after 20 s) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}
