/** Store keys the daemon writes besides the overlay entries (`routes`) and the overlay config (`node`). */

/** Per-agent container address usage of a network (`{ used, total, exhausted }` per agent): the cluster-wide exhaustion view. */
export const cniUsageKey = (network: string): string => `cni-usage/${network}`;
