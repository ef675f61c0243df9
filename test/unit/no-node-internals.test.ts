// No code of ours reaches into Node's private internals: an underscore member of a
// Node object (socket._handle, the fd the client once took from it), process.binding,
// internalBinding, an internal/ module or --expose-internals.  They change without
// notice between Node versions; src/ owns its descriptors instead (src/sys/).  Read
// with TypeScript's parser, so comments and strings that merely mention them do not
// count, and however a member is spelt (a._x, a['_x'], { _x } = a) it does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { ROOT } from '../harness/paths';

/** "file:line: what" for every use of a Node internal in one TypeScript source. */
function nodeInternals(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const report = (node: ts.Node, what: string) => found.push(`${fileName}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${what}`);
  const privateName = (name: string | undefined) => name !== undefined && /^_[^_]/.test(name);
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node)) {
      if (privateName(node.name.text)) report(node, node.getText());
      if (node.name.text === 'binding' && node.expression.getText() === 'process') report(node, 'process.binding');
    } else if (ts.isElementAccessExpression(node) && ts.isStringLiteralLike(node.argumentExpression)) {
      if (privateName(node.argumentExpression.text)) report(node, node.getText());
    } else if (ts.isBindingElement(node) && ts.isObjectBindingPattern(node.parent)) {
      const key = node.propertyName ?? node.name;
      if ((ts.isIdentifier(key) || ts.isStringLiteralLike(key)) && privateName(key.text)) report(node, `{ ${node.getText()} } =`);
    } else if (ts.isIdentifier(node) && node.text === 'internalBinding') {
      report(node, 'internalBinding');
    } else if (ts.isStringLiteralLike(node) && (/^(node:)?internal\//.test(node.text) || node.text.includes('--expose-internals'))) {
      report(node, JSON.stringify(node.text));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function typescriptFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return typescriptFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

test('the check finds each kind of internal, in code and not in comments', () => {
  const sample = [
    '// socket._handle in a comment is no use of it',
    "const text = 'nor is process.binding in a string';",
    'const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;',
    "const handle = sock['_handle'];",
    'const { _handle: h } = sock;',
    "const tcp = process.binding('tcp_wrap');",
    "const fs = internalBinding('fs');",
    "const util = require('internal/util');",
    "spawn(process.execPath, ['--expose-internals', 'x.js']);",
    'const ok = __dirname + sock.remoteAddress + obj.__proto__;',
  ].join('\n');
  assert.deepEqual(
    nodeInternals('sample.ts', sample).map((f) => f.replace(/^sample\.ts:/, '')),
    [
      "3: (sock as unknown as { _handle?: { fd?: number } })._handle",
      "4: sock['_handle']",
      '5: { _handle: h } =',
      '6: process.binding',
      '7: internalBinding',
      '8: "internal/util"',
      '9: "--expose-internals"',
    ],
  );
});

test('src/ uses none of Node\'s internals', () => {
  const files = typescriptFiles(join(ROOT, 'src'));
  assert.ok(files.some((f) => f.endsWith(join('client', 'connect.ts'))), 'the client is among the files read');
  const found = files.flatMap((f) => nodeInternals(relative(ROOT, f), readFileSync(f, 'utf8')));
  assert.deepEqual(found, []);
});
