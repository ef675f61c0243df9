// Builds test/harness/pam-fault.c into a PAM module (see the C file for its
// arguments), for service files that make libpam fail in chosen ways.
import { compiledC } from './paths';

/** The module's absolute path (PAM service files may name a module by path). */
export function faultModulePath(): string {
  return compiledC('pam-fault.c', 'pam_rexecd_fault.so', ['-shared', '-fPIC']);
}
