/**
 * Linux-PAM through koffi: pam_start with a conversation function, the items rexecd
 * sets, authenticate / acct_mgmt / setcred, the PAM environment and pam_end.
 * Loading libpam can fail (it is not installed everywhere); loadPam says so.
 *
 * pam_start is where Linux-PAM reads the service's configuration and dlopens its
 * modules (libpam's pam_handlers.c); the user and the remote host are items set
 * afterwards.  So a handle can be started before any request has arrived, and the
 * request's own work is only what follows (see PamHandle.start).
 *
 * Layouts (<security/pam_appl.h>, 64-bit): struct pam_message { int msg_style;
 * const char *msg; } and struct pam_response { char *resp; int resp_retcode; } are
 * declared with koffi below; Linux-PAM hands the conversation an array of pointers
 * to messages.
 */
import type { TypeObject } from './koffi';
import { koffi, library, libc } from './koffi';

export const PAM_SUCCESS = 0;
export const PAM_NEW_AUTHTOK_REQD = 12;
export const PAM_CONV_ERR = 19;
export const PAM_SILENT = 0x8000;
export const PAM_DISALLOW_NULL_AUTHTOK = 0x1;
export const PAM_ESTABLISH_CRED = 0x2;
const PAM_USER = 2;
const PAM_RHOST = 4;
const PAM_FAIL_DELAY = 10;

export const PAM_PROMPT_ECHO_OFF = 1;
export const PAM_PROMPT_ECHO_ON = 2;
export const PAM_ERROR_MSG = 3;
export const PAM_TEXT_INFO = 4;
/** Linux-PAM's own limit on messages in one conversation (PAM_MAX_NUM_MSG). */
const PAM_MAX_NUM_MSG = 32;

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
  pam_start(service: string, user: null, conv: Record<string, unknown>, handle: unknown[]): number;
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
  messageType: TypeObject;
  responseSize: number;
  pointerSize: number;
}

let lib: Lib | undefined;

/** libpam's functions, or the reason it cannot be loaded. */
export function loadPam(): { ok: true } | { ok: false; why: string } {
  if (lib) return { ok: true };
  let pam;
  try {
    pam = library('libpam.so.0');
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
  const k = koffi();
  const handle = k.pointer(k.opaque('rexecd_pam_handle'));
  const convType = k.proto('int rexecd_pam_conv_fn(int, void *, void *, void *)');
  const delayType = k.proto('void rexecd_pam_delay_fn(int, unsigned int, void *)');
  const conv = k.struct('rexecd_pam_conv', { conv: k.pointer(convType), appdata_ptr: 'void *' });
  const c = libc();
  lib = {
    pam_start: pam.func('pam_start', 'int', ['const char *', 'const char *', k.pointer(conv), k.out(k.pointer(handle))]),
    pam_set_item: pam.func('pam_set_item', 'int', [handle, 'int', 'const void *']),
    pam_get_item: pam.func('pam_get_item', 'int', [handle, 'int', k.out(k.pointer('const char *'))]),
    pam_authenticate: pam.func('pam_authenticate', 'int', [handle, 'int']),
    pam_acct_mgmt: pam.func('pam_acct_mgmt', 'int', [handle, 'int']),
    pam_setcred: pam.func('pam_setcred', 'int', [handle, 'int']),
    pam_getenvlist: pam.func('pam_getenvlist', 'void *', [handle]),
    pam_end: pam.func('pam_end', 'int', [handle, 'int']),
    pam_strerror: pam.func('pam_strerror', 'const char *', [handle, 'int']),
    calloc: c.func('void *calloc(size_t, size_t)'),
    strndup: c.func('void *strndup(const uint8_t *, size_t)'),
    free: c.func('void free(void *)'),
    convType,
    delayType,
    messageType: k.struct('rexecd_pam_message', { msg_style: 'int', msg: 'const char *' }),
    responseSize: k.sizeof(k.struct('rexecd_pam_response', { resp: 'char *', resp_retcode: 'int' })),
    pointerSize: k.sizeof('void *'),
  };
  return { ok: true };
}

function l(): Lib {
  if (!lib) throw new Error('libpam is not loaded');
  return lib;
}

/** One PAM transaction. */
export class PamHandle {
  private readonly callbacks: unknown[] = [];
  private lastStatus = PAM_SUCCESS;
  private ended = false;

  private constructor(private readonly handle: unknown) {}

  /**
   * pam_start for `service` with no user yet: the configuration is read and the
   * modules loaded now.  The conversation is fixed here (pam_start copies it), so
   * it reads the request's credentials from wherever the caller keeps them.
   */
  static start(service: string, conversation: Conversation): PamHandle {
    const L = l();
    const convPtr = koffi().register((n: number, msgs: unknown, resp: unknown) => answer(L, n, msgs, resp, conversation), koffi().pointer(L.convType));
    const out: unknown[] = [null];
    const rc = L.pam_start(service, null, { conv: convPtr, appdata_ptr: null }, out);
    if (rc !== PAM_SUCCESS) {
      koffi().unregister(convPtr);
      throw new Error(`pam_start(${service}): ${L.pam_strerror(null, rc)}`);
    }
    const h = new PamHandle(out[0]);
    h.callbacks.push(convPtr);
    return h;
  }

  strerror(rc: number): string {
    return l().pam_strerror(this.handle, rc);
  }

  /** Remember the last status for pam_end, which hands it to the modules' cleanup. */
  private status(rc: number): number {
    this.lastStatus = rc;
    return rc;
  }

  /** PAM_USER: the name the client sent, as bytes. */
  setUser(user: Buffer): void {
    this.checked('pam_set_item(PAM_USER)', l().pam_set_item(this.handle, PAM_USER, Buffer.concat([user, Buffer.from([0])])));
  }

  setRhost(rhost: string): void {
    this.checked('pam_set_item(PAM_RHOST)', l().pam_set_item(this.handle, PAM_RHOST, Buffer.from(`${rhost}\0`)));
  }

  /**
   * Replace PAM's own failure delay (pam_unix asks for ~2 s ± 25 %) with nothing:
   * rexecd applies one fixed delay to every refusal, so that refusals look alike.
   */
  disableFailDelay(): void {
    const fn = koffi().register(() => {}, koffi().pointer(l().delayType));
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
      const entry = koffi().decode(list, i * L.pointerSize, 'void *') as unknown;
      if (!entry) break;
      env.push(koffi().decode(entry, 'char', -1) as string);
      L.free(entry);
    }
    L.free(list);
    return env;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    l().pam_end(this.handle, this.lastStatus);
    for (const cb of this.callbacks) koffi().unregister(cb as bigint);
    this.callbacks.length = 0;
  }

  private checked(what: string, rc: number): void {
    if (rc !== PAM_SUCCESS) throw new Error(`${what}: ${this.strerror(rc)}`);
  }
}

/** The conversation callback: C in, C out; the answers are the Conversation's. */
function answer(L: Lib, n: number, msgs: unknown, resp: unknown, conversation: Conversation): number {
  try {
    if (n <= 0 || n > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
    const k = koffi();
    const messages: PamMessage[] = [];
    for (let i = 0; i < n; i++) {
      const m = k.decode(msgs, i * L.pointerSize, 'void *') as unknown;
      const { msg_style, msg } = k.decode(m, L.messageType) as { msg_style: number; msg: string | null };
      messages.push({ style: msg_style, text: msg ?? '' });
    }
    const replies = conversation(messages);
    if (!replies || replies.length !== n) return PAM_CONV_ERR;
    const array = L.calloc(n, L.responseSize);
    if (!array) return PAM_CONV_ERR;
    for (let i = 0; i < n; i++) {
      const reply = replies[i];
      if (reply) k.encode(array, i * L.responseSize, 'void *', L.strndup(reply, reply.length));
    }
    k.encode(resp, 0, 'void *', array);
    return PAM_SUCCESS;
  } catch {
    return PAM_CONV_ERR;
  }
}
