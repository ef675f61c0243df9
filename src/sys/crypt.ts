/**
 * libxcrypt's crypt_r: yescrypt, gost-yescrypt, scrypt, bcrypt, SHA-512, SHA-256,
 * MD5, DES — whatever the system's own login accepts.  The phrase goes in as a
 * Buffer that the caller zeroes; it never becomes a JS string.
 */
import { library } from './koffi';

const CRYPT_DATA_SIZE = 32768;

interface Fns {
  crypt_r(phrase: Buffer, setting: string, data: Buffer): string | null;
  crypt_gensalt_rn(prefix: string | null, count: number, rbytes: null, nrbytes: number, out: Buffer, size: number): unknown;
}

let fns: Fns | undefined;
function f(): Fns {
  if (fns) return fns;
  const lib = library('libcrypt.so.1');
  fns = {
    crypt_r: lib.func('const char *crypt_r(const uint8_t *phrase, const char *setting, void *data)'),
    crypt_gensalt_rn: lib.func('const char *crypt_gensalt_rn(const char *prefix, unsigned long count, const void *rbytes, int nrbytes, char *output, int size)'),
  };
  return fns;
}

/**
 * Hash `phrase` (not NUL-terminated; copied into a scratch buffer that is zeroed
 * afterwards) with `setting`.  Returns undefined when the setting is not one this
 * system can hash with (crypt's "*0"/"*1" failure tokens).
 */
export function cryptHash(phrase: Buffer, setting: string): string | undefined {
  const cphrase = Buffer.alloc(phrase.length + 1);
  const data = Buffer.alloc(CRYPT_DATA_SIZE);
  try {
    phrase.copy(cphrase);
    const out = f().crypt_r(cphrase, setting, data);
    if (out === null || out.startsWith('*')) return undefined;
    return out;
  } finally {
    cphrase.fill(0);
    data.fill(0);
  }
}

/** A fresh setting (salt and cost) for `prefix` ("$y$", "$6$", …; null: the default). */
export function gensalt(prefix: string | null, count: number): string | undefined {
  const out = Buffer.alloc(256);
  const r = f().crypt_gensalt_rn(prefix, count, null, 0, out, out.length);
  if (r === null) return undefined;
  return out.toString('latin1', 0, out.indexOf(0));
}
