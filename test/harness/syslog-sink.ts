// A syslog receiver for the tests: a unix datagram socket that the world mounts
// over /dev/log inside its namespace (Node has no unix datagram sockets: see libc.ts).
import { libc, unixAddress, unixDatagramSocket } from './libc';

export const FACILITY = { daemon: 3, authpriv: 10 } as const;
export const SEVERITY = { err: 3, warning: 4, notice: 5, info: 6 } as const;

/** One datagram: its priority decoded, and the text after it. */
export interface LogLine {
  readonly facility: number;
  readonly severity: number;
  readonly text: string;
  readonly raw: string;
  /** When the sink read it. */
  readonly received: Date;
}

export class SyslogSink {
  readonly fd: number;
  /** Every message received so far; a test may empty it to look only at its own. */
  readonly lines: LogLine[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** drained: false makes a sink that nobody reads (its queue fills up). */
  constructor(
    readonly path: string,
    { drained = true }: { drained?: boolean } = {},
  ) {
    this.fd = unixDatagramSocket();
    const { addr, length } = unixAddress(path);
    if (libc.bind(this.fd, addr, length) !== 0) throw new Error(`syslog sink: bind ${path} failed`);
    // The kernel queues only ~10 datagrams (net.unix.max_dgram_qlen): a sink that
    // is not drained makes every syslog() in rexecd block.  Drain all the time.
    if (drained) {
      this.timer = setInterval(() => this.drain(), 5);
      this.timer.unref();
    }
  }

  /** Every message received so far. */
  drain(): LogLine[] {
    const buf = Buffer.alloc(8192);
    for (;;) {
      const n = Number(libc.recv(this.fd, buf, buf.length, 0));
      if (n <= 0) break;
      const raw = buf.toString('utf8', 0, n);
      const m = /^<(\d+)>(.*)$/s.exec(raw);
      const pri = m ? Number(m[1]) : -1;
      this.lines.push({ facility: pri >> 3, severity: pri & 7, text: m?.[2] ?? raw, raw, received: new Date() });
    }
    return this.lines;
  }

  close(): void {
    clearInterval(this.timer);
    libc.close(this.fd);
  }
}
