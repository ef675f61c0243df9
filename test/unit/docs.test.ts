// The documents (issue 14): the README stays a front door, under 12 KB, and every
// relative link in README.md and docs/*.md lands on a file, and on a heading when it
// names one.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anchors, brokenLinks, relativeLinks, slug } from '../harness/markdown';
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
