/**
 * The account databases through NSS (getpwnam_r, getspnam_r), so users from LDAP
 * or SSSD resolve like local ones.  Names go in as bytes: a name is whatever the
 * client sent, not necessarily UTF-8.
 */
import { koffi, libc, SysError } from './koffi';
import { EBADF, ENOENT, EPERM, ERANGE, ESRCH } from './errno';

export interface PasswdEntry {
  readonly name: string;
  readonly passwd: string;
  readonly uid: number;
  readonly gid: number;
  readonly dir: string;
  readonly shell: string;
}

export interface ShadowEntry {
  readonly hash: string;
  /** Days since the epoch; 0 = must change; -1 = not set (as every field below). */
  readonly lastChange: number;
  readonly max: number;
  readonly inactive: number;
  readonly expire: number;
}

type Lookup = (name: Buffer, out: Record<string, unknown>, buf: Buffer, len: number, result: unknown[]) => number;

// struct passwd and struct spwd as glibc lays them out (<pwd.h>, <shadow.h>), each
// declared when first needed: a PAM login never reads the shadow file itself.
let getpwnam: Lookup | undefined;
function getpwnamR(): Lookup {
  if (getpwnam) return getpwnam;
  const k = koffi();
  const passwd = k.struct('rexecd_passwd', {
    pw_name: 'const char *',
    pw_passwd: 'const char *',
    pw_uid: 'uint32_t',
    pw_gid: 'uint32_t',
    pw_gecos: 'void *', // not read: left undecoded
    pw_dir: 'const char *',
    pw_shell: 'const char *',
  });
  return (getpwnam = libc().func('getpwnam_r', 'int', ['const uint8_t *', k.out(k.pointer(passwd)), 'void *', 'size_t', k.out(k.pointer('void *'))]));
}

let getspnam: Lookup | undefined;
function getspnamR(): Lookup {
  if (getspnam) return getspnam;
  const k = koffi();
  const spwd = k.struct('rexecd_spwd', {
    sp_namp: 'const char *',
    sp_pwdp: 'const char *',
    sp_lstchg: 'long',
    sp_min: 'long',
    sp_max: 'long',
    sp_warn: 'long',
    sp_inact: 'long',
    sp_expire: 'long',
    sp_flag: 'unsigned long',
  });
  return (getspnam = libc().func('getspnam_r', 'int', ['const uint8_t *', k.out(k.pointer(spwd)), 'void *', 'size_t', k.out(k.pointer('void *'))]));
}

const LOOKUPS = { getpwnam_r: getpwnamR, getspnam_r: getspnamR };

function lookup(call: keyof typeof LOOKUPS, name: Buffer): Record<string, unknown> | undefined {
  const cname = Buffer.concat([name, Buffer.from([0])]);
  for (let size = 4096; size <= 1 << 20; size *= 4) {
    const out: Record<string, unknown> = {};
    const result: unknown[] = [null];
    const rc = LOOKUPS[call]()(cname, out, Buffer.alloc(size), size, result);
    if (rc === ERANGE) continue;
    // ENOENT, ESRCH, EBADF and EPERM are how some NSS modules say "no such user".
    if (rc !== 0 && rc !== ENOENT && rc !== ESRCH && rc !== EBADF && rc !== EPERM) throw new SysError(call, rc);
    return result[0] ? out : undefined;
  }
  throw new SysError(call, ERANGE);
}

/** The passwd entry for `name`, or undefined when there is no such user. */
export function getPasswd(name: Buffer): PasswdEntry | undefined {
  const e = lookup('getpwnam_r', name);
  if (!e) return undefined;
  return {
    name: e.pw_name as string,
    passwd: (e.pw_passwd as string | null) ?? '',
    uid: e.pw_uid as number,
    gid: e.pw_gid as number,
    dir: (e.pw_dir as string | null) ?? '',
    shell: (e.pw_shell as string | null) ?? '',
  };
}

/** The shadow entry for `name`, or undefined when it has none. */
export function getShadow(name: string): ShadowEntry | undefined {
  const e = lookup('getspnam_r', Buffer.from(name));
  if (!e) return undefined;
  return {
    hash: (e.sp_pwdp as string | null) ?? '',
    lastChange: Number(e.sp_lstchg),
    max: Number(e.sp_max),
    inactive: Number(e.sp_inact),
    expire: Number(e.sp_expire),
  };
}
