/**
 * Linux interface names: 1 to 15 bytes (IFNAMSIZ is 16 with the terminating NUL), not "." or
 * "..", and no '/', ':' or whitespace (the kernel's dev_valid_name). lashup is stricter: ASCII
 * letters, digits, '.', '_' and '-' only, so a name is always safe in a shell command, a file
 * name and a metric label.
 */
export const MAX_INTERFACE_NAME_LENGTH = 15;

export function isValidInterfaceName(name: unknown): name is string {
  return typeof name === 'string' && /^[A-Za-z0-9._-]{1,15}$/.test(name) && name !== '.' && name !== '..';
}
