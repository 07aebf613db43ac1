#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { asEngineError, EXIT_CODES } from '../errors';
import { stderrLogger } from '../log';
import { COMMANDS, type CommandContext } from './commands';
import { visibleControls } from './visible';

const USAGE = `aries — ARIES self-refinement preference optimisation, headless

usage: aries <command> [options]

commands:
  init [DIR]            create a project (--example arithmetic, the default, or --empty)
  import FILE...        import prompts (JSONL/JSON) [--split train|heldout|NAME]
  generate              collect trajectories for the open round
  score                 score every step (scoring.scorers in aries.json)
  select                choose pairs [--strategy verifier,rule,rm]
  export                write the ARIES dataset [--out PATH] [--format conversational|string]
  train                 train the round's policy on its export (needs Python with PyTorch)
  eval                  held-out accuracy, direct and after 1..K refinements [--model ID] [--limit N]
  run [DIR]             the whole loop until --rounds N rounds are trained (default 3)
  stats                 what the project holds [--check: also PRAGMA integrity_check]
  override TRAJECTORY   record a curator decision --action accept|pair|swap|tie|discard [--chosen STEP --rejected STEP]
  serve                 JSON-RPC server on stdio (what the VS Code extension starts)

options:
  -p, --project DIR     the project folder (holds aries.json; default: current folder)
  --json                print the result as JSON on stdout (no progress bar; one line per phase on stderr)
  -v, --verbose         debug logs on stderr
  -h, --help

exit codes: 0 ok, 2 bad input, 3 not found, 4 backend failed, 5 trainer failed, 6 database, 130 cancelled, 1 other`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        project: { type: 'string', short: 'p' },
        json: { type: 'boolean', default: false },
        verbose: { type: 'boolean', short: 'v', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        split: { type: 'string' },
        strategy: { type: 'string' },
        out: { type: 'string' },
        format: { type: 'string' },
        kinds: { type: 'string' },
        model: { type: 'string' },
        limit: { type: 'string' },
        rounds: { type: 'string' },
        example: { type: 'string' },
        empty: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        check: { type: 'boolean', default: false },
        action: { type: 'string' },
        chosen: { type: 'string' },
        rejected: { type: 'string' },
        curator: { type: 'string' },
        note: { type: 'string' },
      },
    });
  } catch (err) {
    process.stderr.write(`aries: ${(err as Error).message}\n\n${USAGE}\n`);
    return EXIT_CODES.BAD_INPUT;
  }
  const [name, ...rest] = parsed.positionals;
  if (parsed.values.help || !name) {
    process.stdout.write(`${USAGE}\n`);
    return name || parsed.values.help ? 0 : EXIT_CODES.BAD_INPUT;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`aries: unknown command "${name}"\n\n${USAGE}\n`);
    return EXIT_CODES.BAD_INPUT;
  }
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT_CODES.CANCELLED);
    process.stderr.write('\naries: stopping after the current batch (completed work is kept); press Ctrl-C again to quit now\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: CommandContext = {
    args: rest,
    values: parsed.values,
    json: parsed.values.json ?? false,
    log: stderrLogger(parsed.values.verbose ?? false),
    signal: controller.signal,
  };
  try {
    const result = await command(ctx);
    if (ctx.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (err) {
    const e = asEngineError(err);
    process.stderr.write(`\naries ${name}: ${visibleControls(e.message)}\n`);
    if (ctx.json) process.stdout.write(`${JSON.stringify({ error: { code: e.code, message: e.message } })}\n`);
    if (e.code === 'INTERNAL' && err instanceof Error && ctx.values.verbose) process.stderr.write(`${err.stack}\n`);
    return EXIT_CODES[e.code];
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`aries: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
