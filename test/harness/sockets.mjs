// Sockets the hostile and fault tests need that node:net cannot make: a TCP port
// that is bound but not listening (a connect to it is refused at once), a listener
// that never calls accept() and whose backlog can be filled (a connect to it then
// hangs in SYN_SENT), and a unix datagram client that fills a syslog socket.
// Loopback only.  Test code: the product's C calls live in src/sys/.
import koffi from 'koffi';
import { connect } from 'node:net';

const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int, int, int)');
const bind = libc.func('int bind(int, const void *, uint32_t)');
const listen = libc.func('int listen(int, int)');
const connectC = libc.func('int connect(int, const void *, uint32_t)');
const send = libc.func('intptr_t send(int, const void *, size_t, int)');
const getsockname = libc.func('int getsockname(int, void *, _Inout_ uint32_t *)');
const close = libc.func('int close(int)');
const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10, SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;

/** A TCP socket bound to a free port of host, 127.0.0.1 or ::1. */
function loopbackSocket(host = '127.0.0.1') {
  if (host !== '127.0.0.1' && host !== '::1') throw new Error(`loopback only, not ${host}`);
  const family = host === '::1' ? AF_INET6 : AF_INET;
  const fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error('socket failed');
  // sockaddr_in: family, port, 4-byte address; sockaddr_in6: family, port, flow info, 16-byte address, scope.
  const addr = Buffer.alloc(family === AF_INET6 ? 28 : 16);
  addr.writeUInt16LE(family, 0);
  if (family === AF_INET6) addr[23] = 1;
  else Buffer.from([127, 0, 0, 1]).copy(addr, 4);
  if (bind(fd, addr, addr.length) !== 0) {
    close(fd);
    throw new Error(`bind ${host} failed`);
  }
  const out = Buffer.alloc(addr.length);
  if (getsockname(fd, out, [out.length]) !== 0) throw new Error('getsockname failed');
  return { fd, port: out.readUInt16BE(2) };
}

/** A port on host (127.0.0.1 or ::1) that is bound (nobody else gets it) but refuses connections. */
export function closedPort({ host = '127.0.0.1' } = {}) {
  const { fd, port } = loopbackSocket(host);
  return { port, close: () => close(fd) };
}

/**
 * A listener on host (127.0.0.1 or ::1) that never accepts.  With fill, its accept
 * queue is filled first (listen backlog 0 holds one connection), so the next
 * connect to it waits in SYN_SENT: the kernel drops SYNs to a listener whose queue
 * is full.
 */
export async function deafListener({ fill = false, host = '127.0.0.1' } = {}) {
  const { fd, port } = loopbackSocket(host);
  if (listen(fd, 0) !== 0) throw new Error('listen failed');
  const fillers = [];
  if (fill) {
    for (let i = 0; i < 8; i++) {
      const s = connect({ port, host });
      s.on('error', () => {});
      fillers.push(s);
      const connected = await new Promise((r) => {
        const t = setTimeout(() => r(false), 300);
        s.once('connect', () => (clearTimeout(t), r(true)));
      });
      if (!connected) break;
    }
  }
  return {
    port,
    close() {
      for (const s of fillers) s.destroy();
      close(fd);
    },
  };
}

/** Send datagrams to the unix socket at path until it would block; returns how many went. */
export function fillDatagramSocket(path, max = 10000) {
  const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error('socket failed');
  try {
    const addr = Buffer.alloc(110);
    addr.writeUInt16LE(AF_UNIX, 0);
    addr.write(path, 2);
    if (connectC(fd, addr, 2 + Buffer.byteLength(path) + 1) !== 0) throw new Error(`connect ${path} failed`);
    const msg = Buffer.from('<30>filler: this datagram only fills the queue');
    let n = 0;
    while (n < max && Number(send(fd, msg, msg.length, MSG_DONTWAIT)) >= 0) n++;
    return n;
  } finally {
    close(fd);
  }
}
