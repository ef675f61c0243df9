// The man pages are the reference for options (issue 14): man/rexecd.8 and man/rexec.1
// render with man -l and pass groff's warnings, and each page's OPTIONS section lists
// exactly the options its program's --help lists, both ways.  rexecd.8 also documents
// every diagnostic text rexecd can send.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { USAGE } from '../../src/options';
import { Diagnostic } from '../../src/protocol/diagnostics';
import { NODE, REXEC, ROOT } from '../harness/paths';

const REXECD_PAGE = join(ROOT, 'man', 'rexecd.8');
const REXEC_PAGE = join(ROOT, 'man', 'rexec.1');

/** The page as man shows it, wide, as plain text (no overstrike, no hyphenation breaks). */
function render(page: string): { status: number | null; stderr: string; text: string } {
  const r = spawnSync('man', ['-l', page], { encoding: 'utf8', env: { PATH: process.env.PATH, MANWIDTH: '200', LANG: 'C.UTF-8' } });
  return { status: r.status, stderr: r.stderr, text: (r.stdout ?? '').replace(/.\x08/g, '').replace(/\u2010\s*\n\s*/g, '') };
}

/** groff's own checks, every warning on. */
function lint(page: string): { status: number | null; stderr: string } {
  return spawnSync('groff', ['-mandoc', '-ww', '-z', page], { encoding: 'utf8', env: { PATH: process.env.PATH, LC_ALL: 'C' } });
}

/** The lines of the section NAME of a page's source: from its heading macro (.Sh or .SH) to the next. */
function sectionSource(source: string, name: string): string[] {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^\\.S[Hh] ${name}$`).test(l));
  assert.ok(start >= 0, `no ${name} section`);
  const end = lines.findIndex((l, i) => i > start && /^\.S[Hh] /.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** The options an mdoc(7) OPTIONS section lists: the Fl words of its outermost list's .It lines. */
function mdocOptions(source: string): string[] {
  const options: string[] = [];
  let depth = 0;
  for (const line of sectionSource(source, 'OPTIONS')) {
    if (line.startsWith('.Bl ')) depth++;
    else if (line.startsWith('.El')) depth--;
    else if (depth === 1 && line.startsWith('.It ')) {
      for (const m of line.matchAll(/\bFl (Fl )?([A-Za-z0-9][\w-]*)/g)) options.push(`${m[1] ? '--' : '-'}${m[2]}`);
    }
  }
  return options;
}

/** The options a man(7) OPTIONS section lists: the tag line after each .TP. */
function manOptions(source: string): string[] {
  const lines = sectionSource(source, 'OPTIONS');
  return lines
    .filter((_, i) => lines[i - 1] === '.TP')
    .flatMap((tag) => [...tag.replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '').matchAll(/(?<![\w-])(--?[A-Za-z0-9][\w-]*)/g)].map((m) => m[1]!));
}

/** The options a --help text lists: "  -x, --long", "  --long" or "  -x" at the start of a line. */
function helpOptions(help: string): string[] {
  return [...help.matchAll(/^ {2,6}(?:(-\w), )?(--?[\w-]+)/gm)].flatMap((m) => [m[1], m[2]]).filter((o): o is string => o !== undefined);
}

/** Both directions at once: what each side lacks. */
function assertSameOptions(help: string[], page: string[], pageName: string): void {
  assert.ok(help.length >= 8 && page.length >= 8, `too few options found: --help ${help.join(' ')}; ${pageName} ${page.join(' ')}`);
  assert.deepEqual(
    { missingFromPage: help.filter((o) => !page.includes(o)), missingFromHelp: page.filter((o) => !help.includes(o)) },
    { missingFromPage: [], missingFromHelp: [] },
    `--help and ${pageName} OPTIONS disagree`,
  );
}

describe('the option extractors', () => {
  // They decide what the agreement tests compare: each must find what is there and nothing else.
  test('mdoc: the outer list only, short and long forms', () => {
    const source = ['.Sh OPTIONS', '.Bl -tag', '.It Fl i , Fl Fl allow-root', '.It Fl Fl auth Cm pam | shadow', '.Bl -tag', '.It Cm min: Ns Ar 15s', '.It Fl Fl nested', '.El', '.It Fl l', '.El', '.Sh NEXT', '.It Fl Fl after'].join('\n');
    assert.deepEqual(mdocOptions(source), ['-i', '--allow-root', '--auth', '-l']);
  });
  test('man: the .TP tags, escaped hyphens and fonts', () => {
    const source = ['.SH OPTIONS', '.TP', '.BR \\-l ", " \\-\\-user " \\fIuser\\fR"', 'text \\-\\-not\\-a\\-tag', '.TP', '.BR \\-n ", " \\-\\-no\\-stdin', '.TP', '.BI \\-\\-timeout " sec"', '.SH NEXT'].join('\n');
    assert.deepEqual(manOptions(source), ['-l', '--user', '-n', '--no-stdin', '--timeout']);
  });
  test('--help: option lines, not their continuations', () => {
    const help = 'usage: x\n\nOptions:\n  -l, --user   the user\n                   rsh -n)\n      --timeout    seconds\n  -l           log\n  --auth pam|shadow  how\n';
    assert.deepEqual(helpOptions(help), ['-l', '--user', '--timeout', '-l', '--auth']);
  });
});

describe('rexecd(8)', () => {
  const rendered = render(REXECD_PAGE);

  test('man -l renders it, and groff finds nothing to warn about', () => {
    assert.equal(rendered.status, 0, rendered.stderr);
    assert.equal(rendered.stderr, '');
    const l = lint(REXECD_PAGE);
    assert.equal(l.status, 0);
    assert.equal(l.stderr, '');
    assert.match(rendered.text, /^REXECD\(8\)/);
  });

  test('the sections an administrator looks for are there', () => {
    for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'PROTOCOL', 'OPTIONS', 'AUTHENTICATION', 'LOGGING', 'FILES', 'EXIT STATUS', 'DIAGNOSTICS', 'EXAMPLES', 'BRUTE FORCE', 'SECURITY CONSIDERATIONS', 'SEE ALSO']) {
      assert.match(rendered.text, new RegExp(`^${s}$`, 'm'), s);
    }
  });

  test('OPTIONS lists exactly the options of rexecd --help', () => {
    assertSameOptions(helpOptions(USAGE), mdocOptions(readFileSync(REXECD_PAGE, 'utf8')), 'rexecd.8');
  });

  test('every diagnostic text is documented, exactly', () => {
    for (const text of Object.values(Diagnostic)) assert.match(rendered.text, new RegExp(`^ +${text.replace(/[.]/g, '\\.')}$`, 'm'), text);
  });

  test('examples for inetd, systemd and --listen', () => {
    assert.match(rendered.text, /exec +stream +tcp +nowait +root +\/usr\/sbin\/rexecd +rexecd$/m);
    assert.match(rendered.text, /exec +stream +tcp +wait +root +\/usr\/sbin\/rexecd +rexecd$/m);
    assert.match(rendered.text, /exec +stream +tcp +nowait +root +\/usr\/bin\/node +node \/opt\/rexecd\/dist\/rexecd\.cjs/);
    assert.match(rendered.text, /ListenStream=512/);
    assert.match(rendered.text, /StandardInput=socket/);
    assert.match(rendered.text, /Accept=no/);
    assert.match(rendered.text, /rexecd --listen 127\.0\.0\.1:\d+/);
  });
});

describe('rexec(1)', () => {
  const rendered = render(REXEC_PAGE);

  test('man -l renders it, and groff finds nothing to warn about', () => {
    assert.equal(rendered.status, 0, rendered.stderr);
    assert.equal(rendered.stderr, '');
    const l = lint(REXEC_PAGE);
    assert.equal(l.status, 0);
    assert.equal(l.stderr, '');
    assert.match(rendered.text, /^REXEC\(1\)/);
  });

  test('the sections a user looks for are there', () => {
    for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'CREDENTIALS', 'EXIT STATUS', 'ENVIRONMENT', 'FILES', 'EXAMPLES', 'SECURITY', 'SEE ALSO']) {
      assert.match(rendered.text, new RegExp(`^${s}$`, 'm'), s);
    }
  });

  test('OPTIONS lists exactly the options of rexec --help', () => {
    const help = spawnSync(NODE, [REXEC, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.equal(help.status, 0, help.stderr);
    // yargs' option block: from "Options:" to the first empty line.
    const block = /^Options:\n([\s\S]*?)\n\n/m.exec(help.stdout);
    assert.ok(block, help.stdout);
    assertSameOptions(helpOptions(block[1]!), manOptions(readFileSync(REXEC_PAGE, 'utf8')), 'rexec.1');
  });
});
