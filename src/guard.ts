/**
 * The first module rexecd loads.  Under inetd, fds 1 and 2 are the client's
 * connection until silenceStdio() points them at /dev/null, so whatever Node would
 * print before then (an exception while a module loads: a broken installation, a
 * rebuild caught half-way; a warning) would reach the client as text, and only
 * protocol bytes may (protocol.md §1.3).  Until then, on a connection, an uncaught exception
 * becomes "\001Try again.\n" and a log line, and warnings are dropped.  Needs
 * nothing but node:fs, so it works when the rest does not load.
 */
import { fstatSync, writeSync } from 'node:fs';

function onConnection(): boolean {
  try {
    return fstatSync(0).isSocket();
  } catch {
    return false;
  }
}

if (onConnection()) {
  process.removeAllListeners('warning');
  process.on('uncaughtException', (e: Error) => {
    try {
      writeSync(0, Buffer.from('\x01Try again.\n', 'latin1')); // Diagnostic.tryAgain, which may not load
    } catch {
      // The client is gone.
    }
    try {
      (require('./log') as typeof import('./log')).openLog().daemon('err', `failed to start: ${e?.name}: ${e?.message}`);
    } catch {
      // No log either: nothing more can be said.
    }
    process.exit(1);
  });
}
