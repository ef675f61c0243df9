// What scripts/install-test-deps.sh keeps for the tests in /var/cache (regenerable):
// Debian's xinetd unpacked (never installed: it conflicts with openbsd-inetd) and a
// debootstrap minbase bookworm root.  The same paths are in that script.
import { join } from 'node:path';

export const TEST_CACHE = '/var/cache/rexecd-tests';
export const XINETD = join(TEST_CACHE, 'xinetd', 'usr', 'sbin', 'xinetd');
export const BASE_ROOT = join(TEST_CACHE, 'bookworm-minbase.tar');
