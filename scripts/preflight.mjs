// What each measuring script (bench, profile, stress, brute-force) settles before it
// starts: --help, root (they build private mount namespaces and become test users),
// and the programs they run.
import { existsSync } from 'node:fs';

/**
 * Prints `usage` and exits 0 when `help` is set; otherwise exits 1 with a line saying
 * why, unless this is root and every file of `files` exists.
 */
export function preflight(name, { help = false, usage, why, files = [] }) {
  if (help) {
    console.log(`usage: ${usage}`);
    process.exit(0);
  }
  if (process.getuid() !== 0) {
    console.error(`${name}: must run as root (${why})`);
    process.exit(1);
  }
  for (const f of files) {
    if (!existsSync(f)) {
      console.error(`${name}: ${f} is missing (run scripts/install-test-deps.sh, and npm run build)`);
      process.exit(1);
    }
  }
}
