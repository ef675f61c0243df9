/**
 * Standalone mode (--listen): accept connections and start one per-connection
 * rexecd for each, with the socket on fds 0, 1 and 2 and a clean environment, which
 * is exactly what inetd does; the per-connection code is the same one.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import type { Options } from '../options';

export function listen(options: Options, argv: readonly string[] = process.argv.slice(2)): void {
  const childArgs = withoutListenOptions(argv);
  const entry = process.argv[1]!;
  let active = 0;
  const servers: Server[] = [];

  const onConnection = (socket: Socket): void => {
    if (active >= options.maxConnections) {
      // Refuse the excess cleanly: an immediate close, not a hang.
      socket.resetAndDestroy();
      return;
    }
    active++;
    const child = spawn(process.execPath, [entry, ...childArgs], {
      stdio: [socket, socket, socket],
      env: {},
      cwd: '/',
    });
    // The child owns the connection now; our copy must not keep it open.
    socket.destroy();
    child.on('error', () => {});
    child.on('exit', () => {
      active--;
    });
  };

  for (const { host, port } of options.listen) {
    const server = createServer({ pauseOnConnect: true }, onConnection);
    server.on('error', (e) => {
      process.stderr.write(`rexecd: cannot listen on ${host}:${port}: ${e.message}\n`);
      process.exit(1);
    });
    server.listen({ host, port, exclusive: true }, () => {
      process.stdout.write(`rexecd: listening on ${host.includes(':') ? `[${host}]` : host}:${port}\n`);
    });
    servers.push(server);
  }
  const stop = (): void => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** The per-connection rexecd gets every option but the listener's own. */
export function withoutListenOptions(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--listen' || a === '--max-connections') {
      i++;
      continue;
    }
    if (a.startsWith('--listen=') || a.startsWith('--max-connections=')) continue;
    out.push(a);
  }
  return out;
}
