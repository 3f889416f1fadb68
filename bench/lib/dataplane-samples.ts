/** What the dataplane benchmark's measuring process reports: raw samples, summarized by the parent. */
export interface DataplaneSamples {
  /** Milliseconds per repetition to program every agent from empty. */
  programMs: number[];
  removeMs: number[];
  baselineProgramMs: number[];
  baselineRemoveMs: number[];
  changeMs: number[];
  changeOps: number[];
  changeResynced: boolean[];
  programOps: number[];
  flood: Record<string, number | boolean | string>;
  inFlightLimit: number;
  /** Failed sanity checks on entry counts (empty when every count was right). */
  checks: string[];
}
