/**
 * Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
 * messages separated by NUL bytes, commands on the browser's fd 3, answers and events on its
 * fd 4). A page that keeps an event stream open never finishes loading, so `--screenshot` and
 * `--dump-dom` cannot watch it change; this can, without a browser-automation dependency that
 * downloads a browser of its own.
 *
 * `argvPrefix` runs the browser elsewhere (e.g. `nsenter --net=/run/netns/NS`), so a page on a
 * namespace's loopback is reachable. Bounded: every command has a timeout, and `close` ends the
 * browser (SIGKILL after 5 s).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export interface ConsoleProblem {
  source: string;
  text: string;
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Browser {
  /** Console errors, uncaught exceptions and failed loads the page reported. */
  readonly problems: ConsoleProblem[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffer = '';
  private sessionId: string | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly profile: string,
  ) {
    const out = child.stdio[4] as Readable;
    out.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString();
      let end = this.buffer.indexOf('\0');
      while (end >= 0) {
        this.onMessage(JSON.parse(this.buffer.slice(0, end)) as Record<string, unknown>);
        this.buffer = this.buffer.slice(end + 1);
        end = this.buffer.indexOf('\0');
      }
    });
  }

  /** Starts the browser and opens one page (width x height CSS pixels). */
  static async launch(executable: string, options: { argvPrefix?: string[]; width?: number; height?: number } = {}): Promise<Browser> {
    const profile = mkdtempSync(join(tmpdir(), 'lashup-chromium-'));
    const argv = [
      ...(options.argvPrefix ?? []),
      executable,
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-extensions',
      '--remote-debugging-pipe',
      `--user-data-dir=${profile}`,
      'about:blank',
    ];
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    const browser = new Browser(child, profile);
    const { targetInfos } = (await browser.send('Target.getTargets')) as { targetInfos: { targetId: string; type: string }[] };
    const page = targetInfos.find((t) => t.type === 'page');
    const targetId = page?.targetId ?? ((await browser.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string }).targetId;
    browser.sessionId = ((await browser.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string }).sessionId;
    for (const domain of ['Page.enable', 'Runtime.enable', 'Log.enable']) await browser.send(domain);
    await browser.send('Emulation.setDeviceMetricsOverride', { width: options.width ?? 1280, height: options.height ?? 900, deviceScaleFactor: 1, mobile: false });
    return browser;
  }

  private onMessage(message: Record<string, unknown>): void {
    const id = message['id'];
    if (typeof id === 'number') {
      const waiting = this.pending.get(id);
      if (waiting === undefined) return;
      this.pending.delete(id);
      clearTimeout(waiting.timer);
      const error = message['error'] as { message?: string } | undefined;
      if (error !== undefined) waiting.reject(new Error(`CDP: ${error.message ?? JSON.stringify(error)}`));
      else waiting.resolve((message['result'] ?? {}) as Record<string, unknown>);
      return;
    }
    const params = (message['params'] ?? {}) as Record<string, unknown>;
    switch (message['method']) {
      case 'Runtime.consoleAPICalled':
        if (params['type'] === 'error' || params['type'] === 'assert') {
          this.problems.push({ source: 'console', text: ((params['args'] ?? []) as { value?: unknown; description?: string }[]).map((a) => String(a.value ?? a.description ?? '')).join(' ') });
        }
        break;
      case 'Runtime.exceptionThrown': {
        const details = params['exceptionDetails'] as { text?: string; exception?: { description?: string } } | undefined;
        this.problems.push({ source: 'exception', text: `${details?.text ?? ''} ${details?.exception?.description ?? ''}`.trim() });
        break;
      }
      case 'Log.entryAdded': {
        const entry = params['entry'] as { level?: string; text?: string; url?: string } | undefined;
        if (entry?.level === 'error') this.problems.push({ source: 'log', text: `${entry.text ?? ''} ${entry.url ?? ''}`.trim() });
        break;
      }
    }
  }

  /** One DevTools command (on the page once attached); rejects on an error answer or after `timeoutMs`. */
  send(method: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const message = { id, method, params, ...(this.sessionId === undefined || method.startsWith('Target.') ? {} : { sessionId: this.sessionId }) };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`CDP: ${method} had no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      (this.child.stdio[3] as Writable).write(`${JSON.stringify(message)}\0`);
    });
  }

  /** Opens `url` in the page (does not wait for the load: a page holding a stream open never finishes). */
  async navigate(url: string): Promise<void> {
    const result = (await this.send('Page.navigate', { url })) as { errorText?: string };
    if (result.errorText !== undefined) throw new Error(`navigating to ${url}: ${result.errorText}`);
  }

  /** Evaluates `expression` in the page and returns its value (JSON-serialisable). */
  async evaluate<T>(expression: string): Promise<T> {
    const result = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as {
      result: { value?: T };
      exceptionDetails?: { text?: string };
    };
    if (result.exceptionDetails !== undefined) throw new Error(`evaluating ${expression.slice(0, 80)}: ${result.exceptionDetails.text ?? 'exception'}`);
    return result.result.value as T;
  }

  /** A PNG of the page's viewport. */
  async screenshot(): Promise<Buffer> {
    const { data } = (await this.send('Page.captureScreenshot', { format: 'png' })) as { data: string };
    return Buffer.from(data, 'base64');
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.send('Browser.close', {}, 2000).catch(() => undefined);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}
