/**
 * Linux-PAM through koffi: pam_start with a conversation function, the items rexecd
 * sets, authenticate / acct_mgmt / setcred, the PAM environment and pam_end.
 * Loading libpam can fail (it is not installed everywhere); loadPam says so.
 */
import type { LibraryHandle, TypeObject } from 'koffi';
import { koffi, libc } from './koffi';

export const PAM_SUCCESS = 0;
export const PAM_NEW_AUTHTOK_REQD = 12;
export const PAM_CONV_ERR = 19;
export const PAM_SILENT = 0x8000;
export const PAM_DISALLOW_NULL_AUTHTOK = 0x1;
export const PAM_ESTABLISH_CRED = 0x2;
export const PAM_DELETE_CRED = 0x4;
const PAM_USER = 2;
const PAM_RHOST = 4;
const PAM_FAIL_DELAY = 10;

export const PAM_PROMPT_ECHO_OFF = 1;
export const PAM_PROMPT_ECHO_ON = 2;
export const PAM_ERROR_MSG = 3;
export const PAM_TEXT_INFO = 4;

export interface PamMessage {
  readonly style: number;
  readonly text: string;
}

/**
 * Answers one conversation: one reply per message, a Buffer (copied into C memory
 * that PAM frees) or null for messages that take no answer.  Returning undefined
 * fails the conversation (PAM_CONV_ERR).
 */
export type Conversation = (messages: readonly PamMessage[]) => (Buffer | null)[] | undefined;

interface Lib {
  pam_start(service: string, user: Buffer, conv: Record<string, unknown>, handle: unknown[]): number;
  pam_set_item(h: unknown, item: number, value: unknown): number;
  pam_get_item(h: unknown, item: number, out: unknown[]): number;
  pam_authenticate(h: unknown, flags: number): number;
  pam_acct_mgmt(h: unknown, flags: number): number;
  pam_setcred(h: unknown, flags: number): number;
  pam_getenvlist(h: unknown): unknown;
  pam_end(h: unknown, status: number): number;
  pam_strerror(h: unknown, errnum: number): string;
  calloc(n: number, size: number): unknown;
  strndup(s: Buffer, n: number): unknown;
  free(p: unknown): void;
  convType: TypeObject;
  delayType: TypeObject;
}

let lib: Lib | undefined;

/** libpam's functions, or the reason it cannot be loaded. */
export function loadPam(): { ok: true } | { ok: false; why: string } {
  if (lib) return { ok: true };
  let pam: LibraryHandle;
  try {
    pam = koffi.load('libpam.so.0');
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
  const handle = koffi.opaque('rexecd_pam_handle');
  const convType = koffi.proto('int rexecd_pam_conv_fn(int, void *, void *, void *)');
  const delayType = koffi.proto('void rexecd_pam_delay_fn(int, unsigned int, void *)');
  const conv = koffi.struct('rexecd_pam_conv', { conv: koffi.pointer(convType), appdata_ptr: 'void *' });
  const c = libc();
  lib = {
    pam_start: pam.func('pam_start', 'int', ['const char *', 'const uint8_t *', koffi.pointer(conv), koffi.out(koffi.pointer(koffi.pointer(handle)))]),
    pam_set_item: pam.func('pam_set_item', 'int', [koffi.pointer(handle), 'int', 'const void *']),
    pam_get_item: pam.func('pam_get_item', 'int', [koffi.pointer(handle), 'int', koffi.out(koffi.pointer('const char *'))]),
    pam_authenticate: pam.func('pam_authenticate', 'int', [koffi.pointer(handle), 'int']),
    pam_acct_mgmt: pam.func('pam_acct_mgmt', 'int', [koffi.pointer(handle), 'int']),
    pam_setcred: pam.func('pam_setcred', 'int', [koffi.pointer(handle), 'int']),
    pam_getenvlist: pam.func('pam_getenvlist', 'void *', [koffi.pointer(handle)]),
    pam_end: pam.func('pam_end', 'int', [koffi.pointer(handle), 'int']),
    pam_strerror: pam.func('pam_strerror', 'const char *', [koffi.pointer(handle), 'int']),
    calloc: c.func('void *calloc(size_t, size_t)'),
    strndup: c.func('void *strndup(const uint8_t *, size_t)'),
    free: c.func('void free(void *)'),
    convType,
    delayType,
  };
  return { ok: true };
}

function l(): Lib {
  if (!lib) throw new Error('libpam is not loaded');
  return lib;
}

const PAM_RESPONSE_SIZE = 16; // { char *resp; int resp_retcode; }

/** One PAM transaction. */
export class PamHandle {
  private readonly handle: unknown;
  private readonly callbacks: unknown[] = [];
  private lastStatus = PAM_SUCCESS;
  private ended = false;

  constructor(service: string, user: Buffer, conversation: Conversation) {
    const L = l();
    const convPtr = koffi.register((n: number, msgs: unknown, resp: unknown) => answer(L, n, msgs, resp, conversation), koffi.pointer(L.convType));
    this.callbacks.push(convPtr);
    const out: unknown[] = [null];
    const rc = L.pam_start(service, Buffer.concat([user, Buffer.from([0])]), { conv: convPtr, appdata_ptr: null }, out);
    if (rc !== PAM_SUCCESS) {
      this.release();
      throw new Error(`pam_start(${service}): ${L.pam_strerror(null, rc)}`);
    }
    this.handle = out[0];
  }

  strerror(rc: number): string {
    return l().pam_strerror(this.handle, rc);
  }

  /** Remember the last status for pam_end, which hands it to the modules' cleanup. */
  private status(rc: number): number {
    this.lastStatus = rc;
    return rc;
  }

  setRhost(rhost: string): void {
    this.checked('pam_set_item(PAM_RHOST)', l().pam_set_item(this.handle, PAM_RHOST, Buffer.from(`${rhost}\0`)));
  }

  /**
   * Replace PAM's own failure delay (pam_unix asks for ~2 s ± 25 %) with nothing:
   * rexecd applies one fixed delay to every refusal, so that refusals look alike.
   */
  disableFailDelay(): void {
    const fn = koffi.register(() => {}, koffi.pointer(l().delayType));
    this.callbacks.push(fn);
    this.checked('pam_set_item(PAM_FAIL_DELAY)', l().pam_set_item(this.handle, PAM_FAIL_DELAY, fn));
  }

  authenticate(flags: number): number {
    return this.status(l().pam_authenticate(this.handle, flags));
  }

  acctMgmt(flags: number): number {
    return this.status(l().pam_acct_mgmt(this.handle, flags));
  }

  setcred(flags: number): number {
    return this.status(l().pam_setcred(this.handle, flags));
  }

  /** PAM_USER: the name the modules settled on (they may map the one given). */
  user(): string | undefined {
    const out: unknown[] = [null];
    if (l().pam_get_item(this.handle, PAM_USER, out) !== PAM_SUCCESS) return undefined;
    return (out[0] as string | null) ?? undefined;
  }

  /** pam_getenvlist, as NAME=value strings; the C copies are freed. */
  environment(): string[] {
    const L = l();
    const list = L.pam_getenvlist(this.handle);
    if (!list) return [];
    const env: string[] = [];
    for (let i = 0; ; i++) {
      const entry = koffi.decode(list, i * 8, 'void *') as unknown;
      if (!entry) break;
      env.push(koffi.decode(entry, 'char', -1) as string);
      L.free(entry);
    }
    L.free(list);
    return env;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    l().pam_end(this.handle, this.lastStatus);
    this.release();
  }

  private checked(what: string, rc: number): void {
    if (rc !== PAM_SUCCESS) throw new Error(`${what}: ${this.strerror(rc)}`);
  }

  private release(): void {
    for (const cb of this.callbacks) koffi.unregister(cb as bigint);
    this.callbacks.length = 0;
  }
}

/** The conversation callback: C in, C out; the answers are the Conversation's. */
function answer(L: Lib, n: number, msgs: unknown, resp: unknown, conversation: Conversation): number {
  try {
    if (n <= 0 || n > 64) return PAM_CONV_ERR;
    const messages: PamMessage[] = [];
    for (let i = 0; i < n; i++) {
      // Linux-PAM passes an array of pointers to messages.
      const m = koffi.decode(msgs, i * 8, 'void *') as unknown;
      messages.push({ style: koffi.decode(m, 0, 'int') as number, text: (koffi.decode(m, 8, 'const char *') as string | null) ?? '' });
    }
    const replies = conversation(messages);
    if (!replies || replies.length !== n) return PAM_CONV_ERR;
    const array = L.calloc(n, PAM_RESPONSE_SIZE);
    if (!array) return PAM_CONV_ERR;
    for (let i = 0; i < n; i++) {
      const reply = replies[i];
      if (reply) koffi.encode(array, i * PAM_RESPONSE_SIZE, 'void *', L.strndup(reply, reply.length));
    }
    koffi.encode(resp, 0, 'void *', array);
    return PAM_SUCCESS;
  } catch {
    return PAM_CONV_ERR;
  }
}
