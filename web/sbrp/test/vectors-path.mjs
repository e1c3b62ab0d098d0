// Locates shared/vectors/sbrp/sbrp-v1-vectors.json: env KEYLINE_VECTORS (the vectors
// directory, its sbrp/ subdirectory, or the file itself), else ../../../shared/vectors relative
// to web/sbrp. Fails loudly when missing.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkgRoot = resolve(here, '..');

export function vectorsFile() {
  const candidates = [];
  const env = process.env.KEYLINE_VECTORS;
  if (env) {
    const p = resolve(env);
    if (existsSync(p) && statSync(p).isFile()) candidates.push(p);
    candidates.push(join(p, 'sbrp', 'sbrp-v1-vectors.json'), join(p, 'sbrp-v1-vectors.json'));
  } else {
    candidates.push(resolve(pkgRoot, '../../../shared/vectors/sbrp/sbrp-v1-vectors.json'));
  }
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return c;
  throw new Error(`SBRP vectors not found (tried ${candidates.join(', ')}); set KEYLINE_VECTORS`);
}

export function loadVectors() {
  return JSON.parse(readFileSync(vectorsFile(), 'utf8'));
}
