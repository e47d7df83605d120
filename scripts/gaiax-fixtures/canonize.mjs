// Canonical N-Quads (RDFC-1.0) of the N-Quads on stdin, with Digital Bazaar's rdf-canonize,
// the implementation the W3C RDF Canonicalization test suite was written against.
import canonize from 'rdf-canonize';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const dataset = canonize.NQuads.parse(input);
process.stdout.write(await canonize.canonize(dataset, {
  algorithm: 'RDFC-1.0',
  format: 'application/n-quads',
  // The fixtures include blank-node cycles, which the default work factor (1) refuses.
  maxWorkFactor: Infinity,
}));
