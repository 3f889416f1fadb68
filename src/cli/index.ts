export { run, EXIT } from './commands.js';
export type { Io } from './commands.js';
