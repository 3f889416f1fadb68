/** Resolves when `check` holds (polled every `everyMs`), rejects after `ms` naming `what`. */
export function until(check: () => boolean, ms: number, what: string, everyMs = 20): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      if (check()) resolve();
      else if (Date.now() - started > ms) reject(new Error(`${what}: not within ${ms} ms`));
      else setTimeout(tick, everyMs);
    };
    tick();
  });
}
