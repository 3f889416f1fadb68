/**
 * The parts of the `netlink` package lashup uses, each loaded from its own file. The package's
 * index loads every netlink family it knows (generic netlink, nl80211, WireGuard), and nl80211's
 * structures alone are 240 KB of source: requiring the index took a process 20-28 ms of CPU and
 * 46.8-47.4 MiB resident, these files 12 ms and 42.2-42.3 MiB (a bare Node process, four runs
 * each). Every agent pays it twice at start, in the daemon and in its notification helper
 * (notify-child.ts), when a cluster's start is short of CPU: the helper, forked until it says
 * ready, went from 80-90 to 70-80 ms of CPU and from 50.5 to 46.4 MiB resident (20 starts of
 * each, same session). The package has no `exports` map,
 * so its files are reachable by path; a new version of the package may move them (the kernel and
 * codec tests fail at once if so).
 */
export { RawNetlinkSocket } from 'netlink/dist/raw.js';
export { AttrStream, type NetlinkMessage } from 'netlink/dist/structs.js';
export { NetlinkSocket } from 'netlink/dist/netlink.js';
export * as rt from 'netlink/dist/rt/structs.js';
export * as ifla from 'netlink/dist/rt/ifla.js';
