/**
 * This agent's tasks, from each place it learns them (the HTTP API, the CNI path, Docker
 * labels), merged into the one row the DNS component publishes. Each source replaces its own
 * list only, so a Docker resync never drops a task an orchestrator registered, and a task a
 * CNI DEL ended leaves with its attachment.
 */
import type { PublishedTask, TaskSource } from '../keyspace/index.js';

export class LocalTasks {
  private readonly bySource = new Map<TaskSource, PublishedTask[]>();
  private readonly listeners = new Set<() => void>();

  /** Replaces one source's tasks; listeners hear of it when they changed. */
  set(source: TaskSource, tasks: readonly Omit<PublishedTask, 'source'>[]): void {
    const next = tasks.map((t) => ({
      framework: t.framework,
      task: t.task,
      ips: [...t.ips].sort(),
      source,
      ...(t.vips === undefined || t.vips.length === 0 ? {} : { vips: [...t.vips] }),
    }));
    if (JSON.stringify(next) === JSON.stringify(this.bySource.get(source) ?? [])) return;
    this.bySource.set(source, next);
    for (const l of this.listeners) l();
  }

  get(source: TaskSource): PublishedTask[] {
    return [...(this.bySource.get(source) ?? [])];
  }

  /** Every task, in a stable order (the published row changes only when a task does). */
  all(): PublishedTask[] {
    const order = (t: PublishedTask): string => `${t.source}/${t.framework}/${t.task}/${t.ips.join(',')}`;
    return [...this.bySource.values()].flat().sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
