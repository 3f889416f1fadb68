/**
 * systemd's readiness protocol for `Type=notify` units (packaging/lashup.service). The protocol is
 * one datagram on the unix socket named by $NOTIFY_SOCKET, but Node cannot send unix datagrams
 * without a native addon, so this runs systemd's own `systemd-notify` (always installed with
 * systemd) instead of adding one. Its known weakness: systemd attributes a message by the
 * sender's process, and `systemd-notify` exits right after sending; the unit therefore sets
 * `NotifyAccess=all`, and `--pid` names the daemon's own process as the main one, so a message
 * processed after the helper exited still names the right process. Without $NOTIFY_SOCKET (not
 * under systemd, or another unit type) nothing runs.
 */
import { execFile } from 'node:child_process';

export interface NotifyOptions {
  /** The environment to read NOTIFY_SOCKET from (tests pass their own). */
  env?: NodeJS.ProcessEnv;
  /** The helper (default `systemd-notify` from PATH). */
  command?: string;
  /** The PID to report as the service's main process. */
  pid?: number;
}

/**
 * Sends `READY=1` (ready) or `STOPPING=1` with a status line. Resolves true when sent, false when
 * not under systemd or when the helper failed (the reason in `error`); never rejects: a service
 * manager that cannot be told is no reason to stop the daemon.
 */
export function systemdNotify(state: 'ready' | 'stopping', status: string, options: NotifyOptions = {}): Promise<{ sent: boolean; error?: string }> {
  const env = options.env ?? process.env;
  const socket = env['NOTIFY_SOCKET'];
  if (socket === undefined || socket === '') return Promise.resolve({ sent: false });
  const args = [state === 'ready' ? '--ready' : 'STOPPING=1', `--pid=${options.pid ?? process.pid}`, `--status=${status.replace(/\n/g, ' ').slice(0, 200)}`];
  return new Promise((resolve) => {
    execFile(options.command ?? 'systemd-notify', args, { env, timeout: 5000 }, (err, _stdout, stderr) => {
      if (err === null) resolve({ sent: true });
      else resolve({ sent: false, error: `${err.message.split('\n')[0]} ${stderr.trim().slice(0, 200)}`.trim() });
    });
  });
}
