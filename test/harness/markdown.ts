// Markdown as the repository's documents use it: the relative links a file makes and
// the anchors its headings get, so a test can check that every link still lands.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

/** A link's target as written, and the 1-based line it is on. */
export interface Link {
  readonly target: string;
  readonly line: number;
}

/** Text with fenced code blocks and HTML comments blanked (newlines kept, so lines still count). */
function prose(markdown: string): string {
  const blank = (s: string): string => s.replace(/[^\n]/g, ' ');
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, blank).replace(/<!--[\s\S]*?-->/g, blank);
}

/** The same line with its inline code spans blanked: a link written as code is not a link. */
function withoutCode(line: string): string {
  return line.replace(/(`+)[\s\S]*?\1/g, (s) => ' '.repeat(s.length));
}

/** Every link that is not a URL (no scheme such as https: or mailto:): inline [text](target) and reference definitions. */
export function relativeLinks(markdown: string): Link[] {
  const links: Link[] = [];
  prose(markdown)
    .split('\n')
    .forEach((raw, i) => {
      const line = withoutCode(raw);
      const targets = [...line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g), ...line.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/g)].map((m) => m[1]!);
      for (const target of targets) if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) links.push({ target, line: i + 1 });
    });
  return links;
}

/** GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a document's headings; a repeated heading gets -1, -2, ... as on GitHub. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(markdown).matchAll(/^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/**
 * What is wrong with each relative link of the Markdown file `file`: a target outside
 * `root`, a file or directory that does not exist, or an anchor that no heading of the
 * target has.  Empty when every link lands.
 */
export function brokenLinks(file: string, root: string): string[] {
  const problems: string[] = [];
  const where = (l: Link): string => `${relative(root, file)}:${l.line}: ${l.target}`;
  for (const link of relativeLinks(readFileSync(file, 'utf8'))) {
    const [path = '', anchor] = link.target.split('#', 2) as [string, string | undefined];
    const target = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
    if (relative(root, target).startsWith('..')) problems.push(`${where(link)}: outside the repository`);
    else if (!existsSync(target)) problems.push(`${where(link)}: no such file`);
    else if (anchor !== undefined) {
      if (statSync(target).isDirectory() || !target.endsWith('.md')) problems.push(`${where(link)}: an anchor into something that is not Markdown`);
      else if (!anchors(readFileSync(target, 'utf8')).has(anchor)) problems.push(`${where(link)}: no heading with that anchor`);
    }
  }
  return problems;
}

/** The section numbers of docs/protocol.md: "## 2 One connection…" gives 2, "### 2.1 …" gives 2.1. */
export function sectionNumbers(markdown: string): Set<string> {
  return new Set([...prose(markdown).matchAll(/^#{2,6}\s+(\d+(?:\.\d+)*)\s/gm)].map((m) => m[1]!));
}

/** Every "§N" or "§N.M" in a text, with its line (1-based): the citations of protocol.md. */
export function sectionCitations(text: string): { section: string; line: number }[] {
  return text.split('\n').flatMap((line, i) => [...line.matchAll(/§\s?(\d+(?:\.\d+)*)/g)].map((m) => ({ section: m[1]!, line: i + 1 })));
}
