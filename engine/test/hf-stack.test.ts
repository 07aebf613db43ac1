import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type HfArch, hfModel } from './support/hf-models';
import { cli, sumsProject } from './support/sums-project';
import { PYTHON } from './support/tiny-model';

/**
 * The Hugging Face stack for real, through the engine: Llama and Qwen2 checkpoints as policies
 * (optimum's ONNX export generates, our trainer trains, the next round generates from the trained
 * checkpoint), `trl dpo` as the training command on an exported ARIES dataset, and our trainer
 * with LoRA under `accelerate launch` on two CPU processes.
 */

function sumRows(n: number, prefix: string, offset: number): string {
  return Array.from({ length: n }, (_, i) => {
    const a = 11 + ((i * 7 + offset) % 80);
    const b = 12 + ((i * 13 + offset) % 77);
    return JSON.stringify({ id: `${prefix}${i}`, prompt: `Compute ${a}+${b}.`, answer: String(a + b) });
  }).join('\n') + '\n';
}

interface Db {
  models: { id: number; name: string; path: string; is_current: number }[];
  stepModels: { round: number; model: number }[];
  runs: { status: string; command_json: string; log_path: string; output_dir: string; error: string | null }[];
  metrics: number;
}

function read(root: string): Db {
  const db = new Database(join(root, '.aries/aries.db'), { readonly: true });
  try {
    return {
      models: db.prepare('SELECT id, name, path, is_current FROM models ORDER BY id').all() as Db['models'],
      stepModels: db.prepare('SELECT DISTINCT r.idx AS round, s.model_id AS model FROM steps s JOIN trajectories t ON t.id = s.trajectory_id JOIN rounds r ON r.id = t.round_id ORDER BY r.idx').all() as Db['stepModels'],
      runs: db.prepare('SELECT status, command_json, log_path, output_dir, error FROM training_runs ORDER BY id').all() as Db['runs'],
      metrics: (db.prepare('SELECT COUNT(*) AS n FROM training_metrics').get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}

function trainerLines(logPath: string, type: string): Record<string, unknown>[] {
  return readFileSync(logPath, 'utf8').split('\n').filter((l) => l.startsWith(`{"type": "${type}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('Hugging Face checkpoints as policies: two rounds, each generating from the last one trained', { timeout: 600_000 }, () => {
  for (const arch of ['llama', 'qwen2'] as HfArch[]) {
    const model = hfModel(arch);
    const root = mkdtempSync(join(tmpdir(), `aries-hf-${arch}-`));
    after(() => rmSync(root, { recursive: true, force: true }));
    it(`${arch}: generate (optimum ONNX) → select (rule) → export → train (ours, DPO + NLL) → round 2 from the trained checkpoint`, { skip: model.skip }, () => {
      cpSync(model.dir!, join(root, 'model'), { recursive: true });
      writeFileSync(join(root, 'train.jsonl'), sumRows(12, 't', 0));
      writeFileSync(join(root, 'heldout.jsonl'), sumRows(4, 'h', 5));
      writeFileSync(join(root, 'aries.json'), JSON.stringify({
        name: arch,
        model: 'model',
        prompts: { train: ['train.jsonl'], heldout: ['heldout.jsonl'] },
        generation: { refinements: 1, batchSize: 6, maxNewTokens: 10, temperature: 1.0, stopWhenRepeated: false },
        // A random model is never right, so the verifier would pick nothing: the rule pairs its refinement over its first answer.
        selection: { strategy: 'rule', compute: ['rule'], maxLengthRatio: 100 },
        evaluation: { maxNewTokens: 10, refinements: 1 },
        training: { python: PYTHON, dpo: { learning_rate: 0.001, max_steps: 2, per_device_train_batch_size: 4, rpo_alpha: 1.0, logging_steps: 1 } },
      }, null, 2));
      const r = cli(['run', root, '--rounds', '2']);
      assert.equal(r.code, 0, r.stderr);
      const s = read(root);
      assert.deepEqual(s.models.map((m) => [m.name, m.is_current]), [['base', 0], ['round-1', 0], ['round-2', 1]]);
      const [base, r1] = s.models;
      assert.deepEqual(s.stepModels, [{ round: 1, model: base!.id }, { round: 2, model: r1!.id }], 'round 2 generated with the model round 1 trained');
      for (const m of s.models.slice(1)) {
        for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'onnx/model.onnx']) assert.ok(existsSync(join(m.path, f)), `${m.name}: ${f}`);
        const config = JSON.parse(readFileSync(join(m.path, 'config.json'), 'utf8')) as { architectures: string[]; aries_lineage: { objective: string } };
        assert.equal(config.architectures[0], arch === 'llama' ? 'LlamaForCausalLM' : 'Qwen2ForCausalLM');
        assert.equal(config.aries_lineage.objective, 'dpo');
      }
      assert.ok(s.runs.every((run) => run.status === 'succeeded'));
      assert.match(readFileSync(s.runs[0]!.log_path, 'utf8'), /exported .*onnx\/model\.onnx with optimum \(max \|logits diff\| vs PyTorch/);
    });
  }
});

describe('`trl dpo` (TRL\'s own CLI) trains an exported ARIES dataset; the engine exports and evaluates the result', { timeout: 600_000 }, () => {
  const project = sumsProject({}, { train: 24, heldout: 8 });
  after(() => project.root && rmSync(project.root, { recursive: true, force: true }));
  it('trains a round with training.command = trl dpo, live metrics from TRL\'s log, ONNX by optimum, then held-out accuracy', { skip: project.skip }, () => {
    const file = join(project.root, 'aries.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { [k: string]: unknown }>;
    // The command of docs/dataset-format.md, sized for a CPU test: three steps, no checkpoints, float32.
    config.training = {
      python: PYTHON,
      command: ['{python}', '-m', 'trl.cli.main', 'dpo', '--model_name_or_path', '{model}', '--dataset_name', '{dataset_dir}', '--output_dir', '{output_dir}',
        '--beta', '0.1', '--learning_rate', '1e-5', '--max_steps', '3', '--per_device_train_batch_size', '4', '--logging_steps', '1',
        '--loss_type', 'sigmoid', 'sft', '--loss_weights', '1.0', '1.0', '--save_strategy', 'no', '--report_to', 'none', '--bf16', 'false', '--seed', '3'],
    };
    writeFileSync(file, JSON.stringify(config, null, 2));
    const r = cli(['run', project.root, '--rounds', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { rounds: { evaluation: { n: number; direct: number } | null; trainLoss: number | null }[] };
    const evaluation = report.rounds[0]?.evaluation;
    assert.ok(evaluation && evaluation.n === 8 && evaluation.direct >= 0 && evaluation.direct <= 1, JSON.stringify(report));
    const s = read(project.root);
    assert.equal(s.runs[0]!.status, 'succeeded', s.runs[0]!.error ?? '');
    assert.ok((JSON.parse(s.runs[0]!.command_json) as string[]).includes('trl.cli.main'));
    assert.equal(s.metrics, 3, 'one stored metrics row per TRL log line');
    const trained = s.models.find((m) => m.name === 'round-1')!;
    assert.ok(existsSync(join(trained.path, 'onnx/model.onnx')), 'the engine exported the checkpoint TRL saved');
    assert.ok(existsSync(join(trained.path, 'model.safetensors')));
    const log = readFileSync(s.runs[0]!.log_path, 'utf8');
    assert.match(log, /'rewards\/margins'/);
    assert.match(log, /"aries_trainer","export"/);
  });
});

describe('our trainer with LoRA under `accelerate launch` (2 CPU processes, DDP over gloo), from the engine', { timeout: 600_000 }, () => {
  const project = sumsProject({}, { train: 24, heldout: 4 });
  after(() => project.root && rmSync(project.root, { recursive: true, force: true }));
  it('trains adapters on two processes and registers the merged checkpoint', { skip: project.skip }, () => {
    const file = join(project.root, 'aries.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as { training: Record<string, unknown> };
    config.training = { ...config.training, launcher: 'accelerate', accelerateConfig: 'cpu-ddp-2', lora: { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'] } };
    writeFileSync(file, JSON.stringify(config, null, 2));
    const r = cli(['run', project.root, '--rounds', '1']);
    assert.equal(r.code, 0, r.stderr);
    const s = read(project.root);
    const run = s.runs[0]!;
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.ok((JSON.parse(run.command_json) as string[]).join(' ').includes('accelerate.commands.launch --config_file'));
    const [start] = trainerLines(run.log_path, 'start');
    assert.equal(start?.processes, 2);
    assert.ok((start?.trainable_parameters as number) < (start?.num_parameters as number) / 10, JSON.stringify(start));
    assert.equal(trainerLines(run.log_path, 'start').length, 1, 'only the main process writes progress');
    const trained = s.models.find((m) => m.name === 'round-1')!;
    assert.ok(existsSync(join(trained.path, 'onnx/model.onnx')) && !existsSync(join(trained.path, 'adapter_config.json')));
  });
});
