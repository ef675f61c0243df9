// Loaded with `node --require` in front of rexecd by scripts/profile.mjs: records a
// timeline of one rexecd process (ms since the process started) without touching
// rexecd's code.  It wraps koffi's native module as process.dlopen loads it, so every
// C function rexecd declares is timed on each call; the timeline (and Node's own
// performance.nodeTiming) is written to $REXECD_PROFILE_DIR/<pid>.json just before
// the process execs the shell or _exits.  With REXECD_PROFILE_CPU=1 a V8 CPU profile
// (50 µs samples) goes into the same file; the profiler's SIGPROF interrupts every
// blocking call, so timings are then rougher.
'use strict';
const { writeFileSync } = require('node:fs');
const dir = process.env.REXECD_PROFILE_DIR;
const events = [];
const mark = (what) => events.push([Math.round(performance.now() * 1000) / 1000, what]);
mark('preload');
let session;
if (process.env.REXECD_PROFILE_CPU === '1') {
  session = new (require('node:inspector').Session)();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 50 });
  session.post('Profiler.start');
}

let written = false;
function write(why) {
  if (written || !dir) return;
  written = true;
  mark(why);
  const out = { argv: process.argv, timeOrigin: performance.timeOrigin, nodeTiming: performance.nodeTiming.toJSON(), events };
  if (session) session.post('Profiler.stop', (err, r) => (out.profile = r?.profile));
  try {
    writeFileSync(`${dir}/${process.pid}.json`, JSON.stringify(out));
  } catch {
    // No profile then: the process may have become a user who cannot write there.
  }
}

const dlopen = process.dlopen;
process.dlopen = function (module, file, ...rest) {
  const name = file.split('/').pop();
  mark(`dlopen ${name}`);
  const r = dlopen.call(this, module, file, ...rest);
  mark(`dlopen ${name} done`);
  if (name === 'koffi.node') wrapKoffi(module.exports);
  return r;
};

function wrapKoffi(k) {
  const load = k.load;
  k.load = function (...args) {
    mark(`load ${args[0] ?? 'libc'}`);
    const lib = load.apply(this, args);
    mark(`load ${args[0] ?? 'libc'} done`);
    const func = lib.func.bind(lib);
    const wrapped = (...decl) => wrapFunction(typeof decl[0] === 'string' && decl.length === 1 ? /(\w+)\s*\(/.exec(decl[0])?.[1] : decl[0], func(...decl));
    return new Proxy(lib, { get: (t, p) => (p === 'func' ? wrapped : typeof t[p] === 'function' ? t[p].bind(t) : t[p]) });
  };
}

function wrapFunction(name, f) {
  const w = function (...args) {
    if (name === 'execve' || name === '_exit') write(name);
    mark(`> ${name}`);
    const r = f.apply(this, args);
    mark(`< ${name}`);
    return r;
  };
  w.async = function (...args) {
    const done = args.pop();
    mark(`>> ${name}`);
    return f.async.call(this, ...args, (e, r) => {
      mark(`<< ${name}`);
      done(e, r);
    });
  };
  return w;
}
