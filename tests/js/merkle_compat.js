// Reference answers from @openzeppelin/merkle-tree for the Python compatibility tests.
// stdin: {"values": [...], "types": [...], "multiproof": [indices]?}  -> builds with StandardMerkleTree.of
//    or: {"dump": {...standard-v1...}}                                  -> loads a tree dumped elsewhere
// stdout: {"root", "proofs" (one per value, in value order), "dump", "multiproof"?}
'use strict';
const fs = require('fs');
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const tree = input.dump ? StandardMerkleTree.load(input.dump) : StandardMerkleTree.of(input.values, input.types);
const proofs = [];
for (const [i] of tree.entries()) {
  proofs.push(tree.getProof(i));
}
const out = { root: tree.root, proofs, dump: tree.dump() };
if (input.multiproof) {
  out.multiproof = tree.getMultiProof(input.multiproof);
}
// fs.writeSync in a loop: console.log may truncate large outputs when the process exits right
// after, and one writeSync on a non-blocking pipe may write only part of the buffer (or EAGAIN).
const buf = Buffer.from(JSON.stringify(out), 'utf8');
let off = 0;
while (off < buf.length) {
  try {
    off += fs.writeSync(1, buf, off, buf.length - off);
  } catch (e) {
    if (e.code !== 'EAGAIN') throw e;
  }
}
