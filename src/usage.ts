/**
 * What rexecd's options and the rexec client's have in common: the error a bad
 * command line raises, and how a number of seconds is read.
 */

/** A bad command line: the caller says it with a pointer to --help. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `text` as a number of seconds (digits, an optional fraction) from `min` to `max`. */
export function seconds(option: string, text: string, min: number, max: number): number {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`--${option}: "${text}" is not a number of seconds`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${option}: ${text} is not between ${min} and ${max} seconds`);
  return value;
}
