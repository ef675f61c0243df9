/**
 * HOST[:PORT] as the user types it: a name, an IPv4 address, a bare IPv6 address
 * (several colons, so no port), or [IPv6]:PORT.
 */
import { isIPv6 } from 'node:net';
import { UsageError } from './errors';

export const DEFAULT_PORT = 512;

export interface Target {
  /** The host without brackets or port: what netrc entries and messages name. */
  readonly host: string;
  /** The port from HOST:PORT, if one was given. */
  readonly port: number | undefined;
}

export function parsePort(text: string, what: string): number {
  const value = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(value >= 1 && value <= 65535)) throw new UsageError(`${what}: "${text}" is not a port number (1-65535)`);
  return value;
}

export function parseTarget(text: string): Target {
  if (text === '' || text.startsWith('-')) throw new UsageError(`"${text}" is not a host name`);
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    const host = bracketed[1]!;
    if (!isIPv6(host.replace(/%.*$/, ''))) throw new UsageError(`"${host}" in brackets is not an IPv6 address`);
    return { host, port: bracketed[2] === undefined ? undefined : parsePort(bracketed[2], text) };
  }
  const colons = text.split(':').length - 1;
  if (colons === 0) return { host: text, port: undefined };
  if (colons > 1) {
    // A bare IPv6 address: its last group is never taken for a port.
    if (!isIPv6(text.replace(/%.*$/, ''))) throw new UsageError(`"${text}" is not a host, HOST:PORT or [IPv6]:PORT`);
    return { host: text, port: undefined };
  }
  const at = text.indexOf(':');
  const host = text.slice(0, at);
  if (host === '') throw new UsageError(`"${text}" has no host before the port`);
  return { host, port: parsePort(text.slice(at + 1), text) };
}
