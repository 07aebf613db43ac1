import { badInput } from '../errors';
import type { Project } from '../project/project';
import type { Scorer } from './scorer';
import { VerifierScorer } from './verifier';

/** The scorers named in aries.json (scoring.scorers). */
export function openScorers(p: Project): Scorer[] {
  return p.config.scoring.scorers.map((name) => {
    switch (name) {
      case 'verifier':
        return new VerifierScorer();
      default:
        throw badInput(`aries.json: scoring.scorers has unknown scorer "${name}"`, 'use "verifier"');
    }
  });
}
