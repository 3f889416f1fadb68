/** Spawning and driving cluster workers (bench/lib/cluster-worker.ts) from a parent process. */
import { fork, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

export interface WorkerEvent {
  evt: string;
  [field: string]: unknown;
}

export class WorkerHandle {
  readonly events: WorkerEvent[] = [];
  private readonly waiters: { match: (e: WorkerEvent) => boolean; resolve: (e: WorkerEvent) => void }[] = [];
  private exited = false;

  constructor(readonly child: ChildProcess) {
    child.on('message', (raw) => {
      const message = raw as WorkerEvent;
      // A batch is its events, in order (see sendBatched in cluster-worker.ts).
      for (const event of message.evt === 'batch' ? (message.events as WorkerEvent[]) : [message]) this.receive(event);
    });
    child.on('exit', () => (this.exited = true));
  }

  private receive(event: WorkerEvent): void {
    this.events.push(event);
    for (const w of [...this.waiters]) {
      if (w.match(event)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
    for (const l of this.listeners) l(event);
  }

  private readonly listeners = new Set<(e: WorkerEvent) => void>();

  /**
   * Spawns a worker: `script` is the worker module, `execArgv` the Node flags (loaders,
   * polyfills); `netns` runs it inside that network namespace (`ip netns exec` replaces itself
   * with Node, so the IPC channel and the PID are the worker's own); `env` adds to this process's
   * environment.
   */
  static spawn(script: string, execArgv: string[], netns?: string, env: Readonly<Record<string, string>> = {}): WorkerHandle {
    const stdio: StdioOptions = ['ignore', 'ignore', 'inherit', 'ipc'];
    const options = { stdio, env: { ...process.env, ...env } };
    const child = netns === undefined ? fork(script, [], { execArgv, ...options }) : spawn('ip', ['netns', 'exec', netns, process.execPath, ...execArgv, script], options);
    return new WorkerHandle(child);
  }

  onEvent(listener: (e: WorkerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(command: unknown): void {
    if (!this.exited) this.child.send(command as never);
  }

  /** Asks for the worker's stats; resolves with the stats event sent after this request. */
  stats(timeoutMs = 10_000): Promise<WorkerEvent> {
    const mark = this.events.length;
    this.send({ cmd: 'stats' });
    return this.waitFor((e) => e.evt === 'stats' && this.events.indexOf(e) >= mark, timeoutMs);
  }

  /** The next event matching `match`, or a rejection after `timeoutMs`. */
  waitFor(match: (e: WorkerEvent) => boolean, timeoutMs: number): Promise<WorkerEvent> {
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve };
      this.waiters.push(waiter);
      setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) {
          this.waiters.splice(i, 1);
          reject(new Error(`worker ${this.child.pid}: no matching event within ${timeoutMs} ms`));
        }
      }, timeoutMs).unref();
    });
  }

  /** Resolves once the worker has exited, or after `timeoutMs` (whichever comes first). */
  waitForExit(timeoutMs: number): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Ends the worker the hard way. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exited) this.child.kill(signal);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exited;
  }
}
