// A syslog receiver for the tests: a unix datagram socket that the world mounts
// over /dev/log inside its namespace.  Node has no unix datagram sockets, so this
// uses koffi directly (test code only; the product's C calls live in src/sys/).
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int, int, int)');
const bind = libc.func('int bind(int, const void *, uint32_t)');
const recv = libc.func('intptr_t recv(int, void *, size_t, int)');
const close = libc.func('int close(int)');
const AF_UNIX = 1, SOCK_DGRAM = 2, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;

export class SyslogSink {
  constructor(path) {
    this.path = path;
    this.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (this.fd < 0) throw new Error('syslog sink: socket failed');
    const addr = Buffer.alloc(110);
    addr.writeUInt16LE(AF_UNIX, 0);
    addr.write(path, 2);
    if (bind(this.fd, addr, 2 + Buffer.byteLength(path) + 1) !== 0) throw new Error(`syslog sink: bind ${path} failed`);
    this.lines = [];
    // The kernel queues only ~10 datagrams (net.unix.max_dgram_qlen): a sink that
    // is not drained makes every syslog() in rexecd block.  Drain all the time.
    this.timer = setInterval(() => this.drain(), 5);
    this.timer.unref();
  }

  /** Every message received so far, as { facility, severity, text, raw, received (a Date) }. */
  drain() {
    const buf = Buffer.alloc(8192);
    for (;;) {
      const n = Number(recv(this.fd, buf, buf.length, 0));
      if (n <= 0) break;
      const raw = buf.toString('utf8', 0, n);
      const m = /^<(\d+)>(.*)$/s.exec(raw);
      const pri = m ? Number(m[1]) : -1;
      this.lines.push({ facility: pri >> 3, severity: pri & 7, text: m ? m[2] : raw, raw, received: new Date() });
    }
    return this.lines;
  }

  close() {
    clearInterval(this.timer);
    close(this.fd);
  }
}

export const FACILITY = { daemon: 3, authpriv: 10 };
export const SEVERITY = { err: 3, warning: 4, notice: 5, info: 6 };
