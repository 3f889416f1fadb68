/**
 * What guards the API: the TCP listener's bearer token (a file, created with a random token at
 * first start, mode 0600, so root and the CLI on the node can read it and nobody else), and the
 * group that may use the unix socket.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LashupError } from '../common/index.js';
import { NodeFs, writeFileAtomic } from '../storage/index.js';

/** Reads the token from `path`, creating the file with a new random token when missing. */
export function loadOrCreateToken(path: string): string {
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw new LashupError('LASHUP_ERR_API_TOKEN', `cannot read the API token file ${path}: ${(err as Error).message}`, { path });
  }
  if (text === undefined) {
    const token = randomBytes(32).toString('base64url');
    writeFileAtomic(new NodeFs(), path, `${token}\n`, { mode: 0o600 });
    return token;
  }
  if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(text)) {
    throw new LashupError('LASHUP_ERR_API_TOKEN', `${path} does not hold a usable token; expected 16 to 512 characters of [A-Za-z0-9._~+/=-] (delete it to get a new one)`, { path });
  }
  return text;
}

/** The group id of `group` (a name from /etc/group, or a number). */
export function groupId(group: string, groupFile = '/etc/group'): number {
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch {
    // No group file: the name cannot be found.
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new LashupError('LASHUP_ERR_API_SOCKET_GROUP', `api.socketGroup = ${JSON.stringify(group)}: no such group in ${groupFile}; expected a group name or a numeric id`, { group });
}
