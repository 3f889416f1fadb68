/**
 * Preparing a unix socket path before listening (the API's and the CNI service's): a socket
 * file left by a daemon that died is removed; a socket something still listens on, or a path
 * that is not a socket at all, is refused. The CNI service used to remove whatever was at its
 * path, so a mistyped `cni.socketPath` could delete an ordinary file, and a second daemon took
 * over the first one's socket.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { LashupError } from '../common/index.js';

export const UNIX_SOCKET_IN_USE = 'LASHUP_ERR_SOCKET_IN_USE';

export async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!statSync(path).isSocket()) throw new LashupError(UNIX_SOCKET_IN_USE, `${path} exists and is not a socket; choose a free path`, { path });
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new LashupError(UNIX_SOCKET_IN_USE, `${path} is in use: another process (a lashup daemon?) listens on it`, { path });
  rmSync(path, { force: true });
}
