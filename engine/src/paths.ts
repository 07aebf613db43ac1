import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * The installation root: the folder that holds engine/templates/refinement.json. Found by walking
 * up from this file, so it works from the sources (tsx), the esbuild bundle (dist/) and a VSIX.
 * ARIES_HOME overrides it.
 */
export function installRoot(): string {
  const fromEnv = process.env.ARIES_HOME;
  if (fromEnv) return resolve(fromEnv);
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'engine', 'templates', 'refinement.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find engine/templates/refinement.json above ${__dirname}; set ARIES_HOME to the ARIES Studio folder`);
    dir = parent;
  }
}

export const defaultTemplatePath = (): string => join(installRoot(), 'engine', 'templates', 'refinement.json');
export const trainerPackageDir = (): string => join(installRoot(), 'engine', 'trainer');
export const bundledExampleDir = (): string => join(installRoot(), 'examples', 'arithmetic');
