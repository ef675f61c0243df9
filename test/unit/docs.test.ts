// The documents (issue 14): the README stays a front door, under 12 KB, every
// relative link in README.md and docs/*.md lands on a file, and on a heading when it
// names one, and every "§N" cited anywhere in the repository is a section of
// docs/protocol.md.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anchors, brokenLinks, relativeLinks, sectionCitations, sectionNumbers, slug } from '../harness/markdown';
import { ROOT } from '../harness/paths';

const README = join(ROOT, 'README.md');
/** The hard limit of the README's size, in bytes. */
const README_MAX = 12288;

const documents = [README, ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f))];

test(`README.md is under ${README_MAX} bytes: details belong in docs/ and the man pages`, () => {
  const size = statSync(README).size;
  assert.ok(size < README_MAX, `README.md is ${size} bytes`);
});

test('every relative link in README.md and docs/*.md points at something that exists', () => {
  assert.ok(documents.length >= 6, documents.join(' '));
  assert.deepEqual(documents.flatMap((f) => brokenLinks(f, ROOT)), []);
});

test('the README links to every document in docs/ and to both man pages', () => {
  const linked = new Set(relativeLinks(readFileSync(README, 'utf8')).map((l) => l.target.split('#')[0]));
  for (const f of [...documents.slice(1).map((d) => `docs/${d.split('/').pop()}`), 'man/rexecd.8', 'man/rexec.1']) assert.ok(linked.has(f), `README.md does not link to ${f}`);
});

/** The repository's own text files where protocol.md is cited (not dependencies, not build output). */
function citingFiles(): string[] {
  const skip = new Set(['node_modules', 'dist', '.build', '.git', 'node-lts']);
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const path = join(dir, e.name);
      if (e.isDirectory()) return skip.has(e.name) ? [] : walk(path);
      return /\.(ts|mjs|cjs|js|c|sh|md|[18]|conf|socket|service)$|^(rexec|inetd\.conf\.example)$/.test(e.name) ? [path] : [];
    });
  return [join(ROOT, 'README.md'), join(ROOT, 'inetd.conf.example'), ...['src', 'test', 'docs', 'man', 'scripts', 'etc', 'packaging', '.ci'].flatMap((d) => walk(join(ROOT, d)))];
}

test('every § cited in the repository is a section of docs/protocol.md', () => {
  const sections = sectionNumbers(readFileSync(join(ROOT, 'docs', 'protocol.md'), 'utf8'));
  assert.ok(sections.has('2.9') && sections.has('6'), [...sections].join(' '));
  const files = citingFiles();
  const cited = files.flatMap((f) => sectionCitations(readFileSync(f, 'utf8')).map((c) => ({ ...c, file: f.slice(ROOT.length + 1) })));
  assert.ok(cited.length > 100, `only ${cited.length} citations found in ${files.length} files`);
  assert.deepEqual(cited.filter((c) => !sections.has(c.section)).map((c) => `${c.file}:${c.line}: §${c.section}`), []);
});

describe('the section checker', () => {
  test('numbers of headings, citations with their lines', () => {
    assert.deepEqual([...sectionNumbers('# Title\n## 2 One\n### 2.1 Two\n```\n## 9 in code\n```\n#### 2.1.3 Deep\n## Words\n')], ['2', '2.1', '2.1.3']);
    assert.deepEqual(sectionCitations('see §2.1–§2.6\nand § 7, not 2.3\n'), [
      { section: '2.1', line: 1 },
      { section: '2.6', line: 1 },
      { section: '7', line: 2 },
    ]);
  });
});

describe('the link checker', () => {
  // It decides the test above: it must find what is broken and pass what is not.
  test('anchors as GitHub makes them', () => {
    assert.equal(slug('scripts/install.sh (Node ≥ 20 on the machine)'), 'scriptsinstallsh-node--20-on-the-machine');
    assert.equal(slug("6 The listener's limits per source"), '6-the-listeners-limits-per-source');
    assert.equal(slug('Launchers: inetd, systemd, xinetd, `--listen`'), 'launchers-inetd-systemd-xinetd---listen');
    assert.deepEqual([...anchors('# A\n## B\n```\n# not a heading\n```\n## B\n')], ['a', 'b', 'b-1']);
  });

  test('finds a missing file, a missing heading, a link out of the repository; ignores URLs and code', () => {
    const root = mkdtempSync(join(tmpdir(), 'rexecd-links-'));
    try {
      mkdirSync(join(root, 'docs'));
      writeFileSync(join(root, 'docs', 'a.md'), '# A title\n\n## Part two\n');
      writeFileSync(
        join(root, 'README.md'),
        [
          '[ok](docs/a.md) [ok too](docs/a.md#part-two) [self](#readme) [dir](docs/)',
          '[gone](docs/b.md) [no heading](docs/a.md#part-three) [out](../elsewhere.md)',
          '[web](https://example.org/x#y) [mail](mailto:a@b) `[code](docs/c.md)`',
          '```',
          '[fenced](docs/d.md)',
          '```',
          '<!-- [commented](docs/e.md) -->',
          '# README',
        ].join('\n'),
      );
      assert.deepEqual(brokenLinks(join(root, 'README.md'), root), [
        'README.md:2: docs/b.md: no such file',
        'README.md:2: docs/a.md#part-three: no heading with that anchor',
        'README.md:2: ../elsewhere.md: outside the repository',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
