// Makes every executable named in package.json "bin" executable after tsc.
import { chmodSync, existsSync, readFileSync } from 'node:fs';
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
for (const file of Object.values(pkg.bin ?? {})) {
  const path = new URL(`../${file}`, import.meta.url);
  if (existsSync(path)) chmodSync(path, 0o755);
}
