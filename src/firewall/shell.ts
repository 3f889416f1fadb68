/**
 * One long-lived `nft -i` per daemon, for small, frequent transactions (the VIP tables' updates).
 *
 * Why: every `nft -f` is a process start (a fork of the daemon, libnftables' start-up, a fresh
 * cache of the ruleset). Measured on 3 masters + 16 agents sharing 2 cores, a one-backend VIP
 * change made all 16 agents start `nft` at the same moment and each apply took 300-750 ms,
 * most of the time from a change to every agent's rules. A running `nft -i` takes a line of
 * `;`-separated commands as one transaction (one buffer, one batch) without any of that.
 *
 * How a request's end is known: `nft -i` prints nothing when a line succeeds and an error block
 * (`Error: ...`, the command, carets) on stderr when it fails. After each request's line the
 * shell is sent `list table ip lashup_marker_<n>`, a table that never exists: its error block
 * marks the end, and any stderr before it is the request's own error. Requests run one at a
 * time. A shell that dies, or does not answer within `timeoutMs`, is killed; the request
 * fails (the caller replaces its tables whole through `nft -f`) and the next request starts a
 * new shell.
 *
 * Listings go through the same shell (`list()`): a spawned `nft list table` per family after
 * every VIP change was a fork of the daemon (blocking its event loop for the fork of its whole
 * address space) and a libnftables start on every agent at the same moment; in a wall-time
 * profile of `bench vips` (under the profiler's own load) the daemons spent ~6 % of their time
 * inside `spawn` alone. nft flushes a
 * listing to stdout before it reads the next line (checked against nftables 1.0.6), and every
 * listing of one table ends with its closing `}` line, so a listing is taken as complete only
 * when its marker came back and its text ends with that line: the two pipes' order cannot cut
 * one short. Counters are read fresh by every listing (libnftables does not cache them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { FirewallError, FirewallErrorCode } from './errors.js';

export interface NftShellOptions {
  /** The command and leading arguments; default `['nft']`. `-i` is appended. */
  command?: readonly string[];
  timeoutMs?: number;
}

interface Pending {
  marker: string;
  /** A listing: resolved with stdout once complete; otherwise stdout is ignored. */
  listing: boolean;
  resolve: (stdout: string | undefined) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class NftShell {
  private child: ChildProcess | undefined;
  private stderr = '';
  private stdout = '';
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;
  /** Shells started (the first, and one after each that died or hung). */
  starts = 0;
  /** Listings that failed (the shell died, hung or refused); NftCli spawns `nft list` instead. */
  listingFailures = 0;

  constructor(private readonly options: NftShellOptions = {}) {}

  /** Runs `commands` (one per line, no blocks) as one transaction. Rejects with a FirewallError. */
  run(commands: string): Promise<void> {
    const line = commands
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .join('; ');
    const result = this.queue.then(() => this.send(line, false));
    this.queue = result.catch(() => undefined);
    return result.then(() => undefined);
  }

  /**
   * Lists one table as `nft list table` prints it (counters included); undefined when the
   * table does not exist. Rejects with a FirewallError like `run`.
   */
  list(family: 'ip' | 'ip6', table: string): Promise<string | undefined> {
    const result = this.queue.then(() => this.send(`list table ${family} ${table}`, true));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** The running shell's process id (operators' `lashup vips` and tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the shell now when none runs, so that the first update does not pay its start. */
  warm(): void {
    if (this.child === undefined) this.start();
  }

  /** Ends the shell (it holds nothing: every request was a whole transaction). */
  close(): void {
    this.child?.stdin?.end();
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }

  private send(line: string, listing: boolean): Promise<string | undefined> {
    if (line.length === 0) return Promise.resolve(undefined);
    const child = this.child ?? this.start();
    const marker = `lashup_marker_${++this.seq}`;
    return new Promise<string | undefined>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new FirewallError(FirewallErrorCode.Apply, `nft -i did not answer within ${this.options.timeoutMs ?? 10_000} ms`)), this.options.timeoutMs ?? 10_000);
      this.pending = { marker, listing, resolve, reject, timer };
      child.stdin?.write(`${line}\nlist table ip ${marker}\n`);
    });
  }

  private start(): ChildProcess {
    const [file, ...lead] = (this.options.command ?? ['nft']) as [string, ...string[]];
    const child = spawn(file, [...lead, '-i'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.starts++;
    this.child = child;
    this.stderr = '';
    this.stdout = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
      this.settle();
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      // Only a listing prints; anything else (nothing, from nft) is not kept.
      if (this.pending?.listing === true) this.stdout += chunk.toString();
      this.settle();
    });
    // A write to a shell that just died fails with EPIPE; the exit below settles the request.
    child.stdin?.on('error', () => undefined);
    child.on('error', (err) => this.fail(new FirewallError(FirewallErrorCode.Apply, `nft -i could not run: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      this.fail(new FirewallError(FirewallErrorCode.Apply, `nft -i exited (${signal ?? code})`));
    });
    return child;
  }

  /** The pending request is done once its marker's error block is complete. */
  private settle(): void {
    const p = this.pending;
    if (p === undefined) return;
    const at = this.stderr.indexOf(`list table ip ${p.marker}\n`);
    if (at < 0) return;
    // The caret line under the marker's command ends its block.
    const carets = this.stderr.indexOf('\n', at + 'list table ip \n'.length + p.marker.length);
    if (carets < 0) return;
    // The marker's block starts at the last "Error:" before its command line; before it, the request's own output.
    const own = this.stderr.slice(0, Math.max(0, this.stderr.lastIndexOf('Error:', at))).trim();
    // A listing's end may still be in the stdout pipe: settled again when it arrives (or failed
    // by the request's timer).
    if (p.listing && own.length === 0 && !this.stdout.endsWith('\n}\n')) return;
    const stdout = this.stdout;
    this.stderr = this.stderr.slice(carets + 1);
    this.stdout = '';
    this.pending = undefined;
    clearTimeout(p.timer);
    if (own.length === 0) p.resolve(p.listing ? stdout : undefined);
    else if (p.listing && /^Error: No such file or directory/.test(own)) p.resolve(undefined);
    else {
      if (p.listing) this.listingFailures++;
      p.reject(new FirewallError(FirewallErrorCode.Apply, `nft refused ${p.listing ? 'a listing' : 'an update'}: ${own.slice(0, 500)}`, { stderr: own.slice(0, 500) }));
    }
  }

  private fail(err: FirewallError): void {
    const p = this.pending;
    this.pending = undefined;
    this.stdout = '';
    if (p !== undefined) {
      clearTimeout(p.timer);
      if (p.listing) this.listingFailures++;
      p.reject(err);
    }
    if (this.child !== undefined) {
      const child = this.child;
      this.child = undefined;
      child.kill('SIGKILL');
    }
  }
}
