import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A stand-in trainer for fault tests, set as training.command: `node fake-trainer.js MODE {output_dir}`.
 * It speaks the trainer protocol (docs/protocol.md) without PyTorch, so failures are cheap to stage.
 * It writes its pid to fake-trainer.pid in its working folder (the project root). Modes:
 *   ok        prints start / log / done, writes output_dir/config.json and onnx/model.onnx (a
 *             placeholder for the graph the real trainer exports; nothing here loads it), exits 0
 *   nograph   like ok but writes config.json alone, as `trl dpo` does: the engine then runs
 *             optimum's export on it, which refuses the fake checkpoint
 *   fail      prints an error on stderr and exits 7 (a crash)
 *   nan       prints a log line with a null loss and an error line, exits 3 (training failed)
 *   slow      prints a log line every 100 ms for a minute (to be killed mid-run)
 *   silent    prints nothing and sleeps for two minutes, ignoring a closed stdout (an orphan that lingers)
 *   lines     prints the JSON lines in the file named by ARIES_FAKE_LINES, then behaves like ok
 *   argv      prints its arguments as one JSON line on stderr, then behaves like ok
 *   env       prints its environment on stdout and stderr (as careless tools do), then behaves like ok
 */
const SOURCE = String.raw`
const fs = require('node:fs');
const path = require('node:path');
const [mode, outputDir] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
// Exit only once stdout has drained: process.exit() drops what a pipe has not taken yet (64 KiB).
const finish = (graph = true) => {
  fs.mkdirSync(path.join(outputDir, 'onnx'), { recursive: true });
  fs.writeFileSync(path.join(outputDir, 'config.json'), '{"model_type": "fake"}');
  if (graph) fs.writeFileSync(path.join(outputDir, 'onnx', 'model.onnx'), 'fake-trainer placeholder graph');
  process.stdout.write(JSON.stringify({ type: 'done', output_dir: outputDir, steps: 1, train_loss: 0.5, runtime_s: 0.01 }) + '\n', () => process.exit(0));
};
fs.writeFileSync('fake-trainer.pid', String(process.pid));
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
if (mode === 'ok') {
  say({ type: 'start', objective: 'dpo', rows: 2, rows_by_kind: { direct: 1, refine: 1 }, device: 'cpu', num_parameters: 1, total_steps: 1 });
  say({ type: 'log', step: 1, epoch: 1, loss: 0.5, learning_rate: 0.001, 'rewards/margins': 0.1 });
  finish();
} else if (mode === 'nograph') {
  say({ type: 'start', objective: 'dpo', rows: 2, rows_by_kind: { direct: 1, refine: 1 }, device: 'cpu', num_parameters: 1, total_steps: 1 });
  finish(false);
} else if (mode === 'fail') {
  process.stderr.write('RuntimeError: CUDA out of memory (simulated by fake-trainer)\n');
  process.exit(7);
} else if (mode === 'nan') {
  say({ type: 'log', step: 1, epoch: 1, loss: null, learning_rate: 0.001 });
  say({ type: 'error', message: 'training failed: loss became nan at step 1 (simulated)', exit_code: 3 });
  process.exit(3);
} else if (mode === 'slow') {
  let step = 0;
  say({ type: 'start', objective: 'dpo', rows: 2, rows_by_kind: {}, device: 'cpu', num_parameters: 1, total_steps: 600 });
  setInterval(() => say({ type: 'log', step: ++step, epoch: step / 600, loss: 0.69, learning_rate: 0.001 }), 100);
  setTimeout(() => finish(), 60000);
} else if (mode === 'silent') {
  process.on('SIGPIPE', () => {});
  setTimeout(() => finish(), 120000);
} else if (mode === 'lines') {
  process.stdout.write(fs.readFileSync(process.env.ARIES_FAKE_LINES, 'utf8'), () => finish());
} else if (mode === 'env') {
  process.stderr.write('ENV ' + JSON.stringify(process.env) + '\n');
  process.stdout.write('ENV ' + JSON.stringify(process.env) + '\n', () => finish());
} else if (mode === 'argv') {
  process.stderr.write('ARGV ' + JSON.stringify(process.argv.slice(2)) + '\n');
  finish();
} else {
  process.stderr.write('fake-trainer: unknown mode ' + mode + '\n');
  process.exit(9);
}
`;

/** Writes the fake trainer into `dir` and returns the training.command for a mode. */
export function fakeTrainer(dir: string): (mode: string, ...extra: string[]) => string[] {
  const file = join(dir, 'fake-trainer.js');
  writeFileSync(file, SOURCE);
  return (mode, ...extra) => [process.execPath, file, mode, '{output_dir}', ...extra];
}
