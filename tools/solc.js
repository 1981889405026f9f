#!/usr/bin/env node
// A `solc`-compatible command line over the solc-js (WebAssembly) compiler, so that py-solc-x and
// brownie can use it where no native solc can be installed. It answers `--version` and
// `--standard-json` (input on stdin), ignores `--allow-paths` (solcjs rejects it), prints nothing but
// the JSON (solcjs prints an SMT notice first) and writes synchronously (solcjs loses output beyond
// 64 KiB when stdout is a pipe, because it exits before the pipe drains).
//
// The solc module is found by absolute path: py-solc-x copies this file under .solcx/, away from
// node_modules. `tools/install_solc.py` writes the path in when it installs the copy.
'use strict';
const fs = require('fs');
const path = require('path');

const SOLC_MODULE = process.env.MEDLEDGER_SOLC_MODULE || '__SOLC_MODULE__';
const solc = require(SOLC_MODULE.startsWith('__') ? 'solc' : SOLC_MODULE);
const baseDir = process.env.MEDLEDGER_PROJECT_ROOT || '__PROJECT_ROOT__';

function write(text) {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      throw e;
    }
  }
}

function findImport(p) {
  // Imports resolve against the project root and its node_modules (for "@openzeppelin/...").
  const roots = [process.cwd(), baseDir, path.join(baseDir, 'node_modules')];
  for (const r of roots) {
    const f = path.resolve(r, p);
    if (fs.existsSync(f)) return { contents: fs.readFileSync(f, 'utf8') };
  }
  return { error: 'File not found: ' + p };
}

const args = process.argv.slice(2);
if (args.includes('--version')) {
  // py-solc-x parses "Version: 0.8.x+commit..." from this line.
  write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}
if (args.includes('--standard-json')) {
  const input = fs.readFileSync(0, 'utf8');
  const out = solc.compile(input, { import: findImport });
  write(out + '\n');
  process.exit(0);
}
process.stderr.write('usage: solc --version | solc --standard-json [--allow-paths ...] < input.json\n');
process.exit(2);
