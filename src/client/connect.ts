/**
 * The main connection: every address of HOST in the resolver's order (limited to one
 * family by -4/-6), tried one after the other until one answers, as rcmd(3) does.
 */
import { lookup } from 'node:dns/promises';
import { connect, isIP, type Socket } from 'node:net';
import type { Family } from './cli';
import type { Inbound } from './inbound';
import type { Deadline } from './deadline';
import { ClientError, reason } from './errors';

async function addresses(host: string, family: Family): Promise<string[]> {
  const literal = isIP(host.replace(/%.*$/, ''));
  if (literal !== 0) {
    if (family !== 0 && literal !== family) throw new ClientError(`${host}: not an IPv${family} address`);
    return [host];
  }
  try {
    const found = await lookup(host, { all: true, family, verbatim: true });
    if (found.length === 0) throw Object.assign(new Error('no address'), { code: 'ENODATA' });
    return [...new Set(found.map((a) => a.address))];
  } catch (e) {
    throw new ClientError(`${host}: ${reason(e)}${family ? ` (IPv${family})` : ''}`);
  }
}

function attempt(address: string, port: number, deadline: Deadline, inbound: Inbound): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: address, port, allowHalfOpen: true, onread: inbound.onread });
    const timer =
      deadline.ms > 0
        ? setTimeout(() => {
            sock.destroy();
            reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT', errno: -110 }));
          }, deadline.remaining())
        : undefined;
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      // Errors are seen where they matter (status, relay); none may go unhandled.
      sock.on('error', () => {});
      sock.setKeepAlive(true);
      inbound.attach(sock);
      resolve(sock);
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    });
  });
}

/** Connects; the socket reads into inbound. */
export async function connectToServer(
  host: string,
  port: number,
  family: Family,
  deadline: Deadline,
  inbound: Inbound,
): Promise<Socket> {
  const list = await deadline.race(addresses(host, family), `the address of ${host}`);
  const failures: string[] = [];
  for (const address of list) {
    try {
      return await attempt(address, port, deadline, inbound);
    } catch (e) {
      const where = address === host ? `port ${port}` : `${address} port ${port}`;
      failures.push(`${where}: ${reason(e)}`);
      if (deadline.remaining() === 0) break;
    }
  }
  throw new ClientError(`${host}: cannot connect: ${failures.join('; ')}`);
}
