// Types of tools/ordinal-compare.mjs for the TypeScript tests that import it.
export declare const ORDINAL_COMPARE: string;
export declare function rewriteLocaleCompare(source: string, path: string): string | undefined;
export declare const ordinalComparePlugin: { name: string; setup(build: unknown): void };
