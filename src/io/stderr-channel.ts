/**
 * The secondary connection for the command's stderr (SPEC §2.2): dialled back to
 * the peer's own address at the port it named, from the local address of the main
 * connection, before the credentials are read (classic clients wait in accept()
 * before they send them).
 */
import { connectFrom, withPort } from '../sys/socket';
import type { Connection } from './connection';

export function connectStderr(conn: Connection, port: number): number {
  return connectFrom(conn.local, withPort(conn.peer, port), conn.deadline);
}
