import { createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released), for a
 * process whose port a test must know in advance (a daemon's API asked by the CLI). A port
 * drawn at random from 40,000-59,999 once could fall on one in use by another test's connection
 * (Linux's ephemeral range is 32,768-60,999) for the whole test; this one is free when asked,
 * and only the moment between its release and the daemon's bind is left to chance.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
