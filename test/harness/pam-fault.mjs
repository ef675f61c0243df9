// Builds test/harness/pam-fault.c into a PAM module (see the C file for its
// arguments), for service files that make libpam fail in chosen ways.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './world.mjs';

const BUILD = join(ROOT, 'test', '.build');
const MODULE = join(BUILD, 'pam_rexecd_fault.so');
const SOURCE = join(ROOT, 'test', 'harness', 'pam-fault.c');

/** The module's absolute path (PAM service files may name a module by path). */
export function faultModulePath() {
  if (!existsSync(MODULE) || statSync(MODULE).mtimeMs < statSync(SOURCE).mtimeMs) {
    mkdirSync(BUILD, { recursive: true });
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-shared', '-fPIC', '-o', MODULE, SOURCE]);
  }
  return MODULE;
}
