import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { badInput } from '../errors';
import { trainerPackageDir } from '../paths';
import { projectPath, type ProjectConfig } from '../project/config';

/**
 * What a training run starts: the argument list (never a shell string) and the trainer config it
 * reads. The built-in trainer is `{python} -m aries_trainer <objective> --config <file>`, started
 * alone or through `accelerate launch --config_file <file>` (training.launcher); a configured
 * training.command replaces it whole. LoRA settings become the trainer's PEFT fields.
 */

/** Replaces {python} {trainer} {model} {dataset} {dataset_dir} {output_dir} {config} in each argument (no shell involved). */
export function expandCommand(template: string[], values: Record<string, string>): string[] {
  return template.map((arg) => arg.replace(/\{(python|trainer|model|dataset_dir|dataset|output_dir|config)\}/g, (_m, k: string) => values[k] ?? ''));
}

/** The accelerate config files shipped with the trainer (engine/trainer/accelerate/*.yaml), by name. */
export function shippedAccelerateConfigs(): string[] {
  const dir = join(trainerPackageDir(), 'accelerate');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort() : [];
}

/** training.accelerateConfig as a file: a shipped name, else a path relative to the project folder. */
export function accelerateConfigFile(root: string, value: string): string {
  const shipped = join(trainerPackageDir(), 'accelerate', `${value}.yaml`);
  if (/^[A-Za-z0-9_-]+$/.test(value) && existsSync(shipped)) return shipped;
  const file = projectPath(root, value);
  if (!existsSync(file)) {
    throw badInput(`training.accelerateConfig is "${value}": no such shipped config and no file ${file}`, `use one of ${shippedAccelerateConfigs().join(', ')} or a path to an accelerate config file`);
  }
  return file;
}

/** The built-in trainer's command template for this project (placeholders still in). */
export function builtinCommand(root: string, config: ProjectConfig): string[] {
  const { objective, launcher, accelerateConfig } = config.training;
  const trainer = ['-m', 'aries_trainer', objective, '--config', '{config}'];
  if (launcher === 'python') return ['{python}', ...trainer];
  const file = accelerateConfig === null ? [] : ['--config_file', accelerateConfigFile(root, accelerateConfig)];
  return ['{python}', '-m', 'accelerate.commands.launch', ...file, ...trainer];
}

/**
 * The trainer config file's fields: the run's paths, the project's refinement template (the file
 * the engine built its refinement prompts from, which the trainer's refine_from_direct rows must
 * match), training.<objective>, and LoRA as PEFT fields.
 */
export function trainerConfig(config: ProjectConfig, paths: { model: string; dataset: string; outputDir: string; refinementTemplate: string }): Record<string, string | number | boolean> {
  const { objective, lora } = config.training;
  const fields: Record<string, string | number | boolean> = {
    model_name_or_path: paths.model, dataset_path: paths.dataset, output_dir: paths.outputDir, refinement_template: paths.refinementTemplate, ...config.training[objective],
  };
  if (lora !== null) {
    Object.assign(fields, { use_peft: true, lora_r: lora.r, lora_alpha: lora.alpha, lora_dropout: lora.dropout, lora_target_modules: lora.targetModules.join(',') });
  }
  return fields;
}

/**
 * What the engine runs on a trained checkpoint after its training command: `export` (the ONNX
 * graph, when the command wrote none: `trl dpo`, any Hugging Face trainer) or `quantize` (the int8
 * graph, with generation.onnxWeights "int8").
 */
export function trainerToolCommand(python: string, tool: 'export' | 'quantize', outputDir: string): string[] {
  return [python, '-m', 'aries_trainer', tool, '--model_name_or_path', outputDir];
}
