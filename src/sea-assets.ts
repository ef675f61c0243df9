/**
 * The assets scripts/build-sea.mjs puts into the single executable, which the loader
 * (src/loader.ts, built with REXECD_SEA) reads: rexecd's bundle, its V8 code cache
 * made by the executable itself, and the rexec client's bundle.
 */
export const SEA_ASSETS = { main: 'rexecd-main.js', cache: 'rexecd-main.cache', client: 'rexec-main.js' } as const;
