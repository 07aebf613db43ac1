import { join } from 'node:path';
import type { Logger } from '../log';
import type { EngineSettings } from '../protocol/engine';
import { applySettings } from './settings';
import { currentModel, registerModel } from '../model/registry';
import { loadTemplate, type RefinementTemplate } from '../refinement/template';
import { type Db, now, openDb } from '../store/db';
import { type ProjectConfig, projectPath, readProjectConfig } from './config';

/** Everything an operation needs: the project folder, its config, its database, the template. */
export interface Project {
  root: string;
  config: ProjectConfig;
  db: Db;
  /** <root>/.aries: the database, model checkpoints, exports and training logs. */
  stateDir: string;
  template: RefinementTemplate;
  log: Logger;
}

export const STATE_DIR = '.aries';

export function openProject(root: string, log: Logger, options: { dbPath?: string; settings?: EngineSettings } = {}): Project {
  const config = options.settings ? applySettings(readProjectConfig(root), options.settings) : readProjectConfig(root);
  const stateDir = join(root, STATE_DIR);
  const template = loadTemplate(config.refinementTemplate ? projectPath(root, config.refinementTemplate) : undefined);
  const db = openDb(options.dbPath ?? (options.settings?.databasePath ? projectPath(root, options.settings.databasePath) : join(stateDir, 'aries.db')));
  const project: Project = { root, config, db, stateDir, template, log };
  // IMMEDIATE: this reads then writes, and a deferred transaction that another writer overtakes
  // between the two fails with SQLITE_BUSY at once, whatever the busy timeout.
  db.transaction(() => {
    const existing = db.prepare('SELECT id FROM projects LIMIT 1').get();
    if (existing) db.prepare('UPDATE projects SET name = ?, root = ?, config_json = ?').run(config.name, root, JSON.stringify(config));
    else db.prepare('INSERT INTO projects (name, root, config_json, created_at) VALUES (?, ?, ?, ?)').run(config.name, root, JSON.stringify(config), now());
    if (!currentModel(db)) {
      const backend = config.generation.backend;
      const path = backend === 'onnx' ? projectPath(root, config.model) : config.model;
      registerModel(db, { name: 'base', backend, path }, true);
    }
  }).immediate();
  return project;
}

export function closeProject(p: Project): void {
  if (p.db.open) p.db.close();
}
