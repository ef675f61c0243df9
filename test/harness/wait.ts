// Waiting: for a time, for a promise at most so long, for a condition to hold.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for promise at most ms; 'timeout' if it did not settle by then. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    // A pending timer would keep the test process alive for ms after its last test.
    clearTimeout(timer);
  }
}

/**
 * Polls ok() every 20 ms until it returns something other than undefined or false,
 * and resolves to that; throws after ms with what (or what() for a message that
 * says what there was instead).
 */
export async function waitFor<T>(ok: () => T | undefined | false, what: string | (() => string), ms = 10000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = ok();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(typeof what === 'function' ? what() : what);
    await sleep(20);
  }
}
