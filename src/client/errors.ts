/**
 * How the client fails.  Every failure is a ClientError with the exit status it
 * ends the process with:
 *
 *   1  the server refused (a diagnostic, or the connection closed with no answer)
 *   2  usage, credentials, name resolution, connection or timeout on this side
 *
 * Messages never hold the password.
 */
import { getSystemErrorMap } from 'node:util';
import { strerror, SysError } from '../sys/koffi';

export const EXIT_REFUSED = 1;
export const EXIT_LOCAL = 2;

export class ClientError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_LOCAL,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}


/** A bad command line: the one class rexecd's options use too (src/usage.ts); exit 2 with a pointer to --help. */
export { UsageError } from '../usage';

let errnoMap: Map<number, [string, string]> | undefined;

/**
 * "Connection refused" for ECONNREFUSED, and so on: the C library's wording for our
 * own system calls (SysError), libuv's (the same for the common ones) for Node's.
 */
export function reason(e: unknown): string {
  if (e instanceof SysError) return strerror(e.errno);
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.errno === 'number') {
    errnoMap ??= getSystemErrorMap();
    const entry = errnoMap.get(err.errno);
    if (entry) return capitalise(entry[1]);
  }
  switch (err?.code) {
    case 'ENOTFOUND':
      return 'Name or service not known';
    case 'EAI_AGAIN':
      return 'Temporary failure in name resolution';
    case 'ENODATA':
      return 'No address associated with hostname';
  }
  return err?.message ?? String(e);
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
