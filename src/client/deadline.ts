/**
 * One deadline for the whole start of a session -- connecting, the server's
 * connect-back and its answer -- as the server has one from accept to the status
 * byte.  0 ms means no limit.
 */
import { ClientError } from './errors';

export class Deadline {
  private readonly end: number;

  constructor(
    readonly ms: number,
    private readonly host: string,
  ) {
    this.end = ms > 0 ? performance.now() + ms : Infinity;
  }

  remaining(): number {
    return Math.max(0, this.end - performance.now());
  }

  /** The error for running out of time while waiting for `what`. */
  expired(what: string): ClientError {
    return new ClientError(`${this.host}: timed out after ${this.ms / 1000} s waiting for ${what}`);
  }

  /**
   * Settles as `work` does, or rejects with expired(what) when time runs out first;
   * onTimeout then cleans up what `work` was waiting on.
   */
  race<T>(work: Promise<T>, what: string, onTimeout?: () => void): Promise<T> {
    if (this.end === Infinity) return work;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        onTimeout?.();
        reject(this.expired(what));
      }, this.remaining());
      work.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }
}
