import { Command, CommanderError } from 'commander';
import { backboneCommand } from './backbone.ts';
import { dataCommand } from './data.ts';
import { predictCommand } from './predict.ts';
import { serveCommand } from './serve.ts';
import { ensembleCommand, evaluateCommand, trainCommand } from './train.ts';


export function buildProgram(): Command {
  const program = new Command('covid-ct')
    .description('COVID-19 pneumonia on chest CT by transfer learning. Research software, not a diagnostic device.')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();

  program.addCommand(dataCommand());
  program.addCommand(trainCommand());
  program.addCommand(evaluateCommand());
  program.addCommand(ensembleCommand());
  program.addCommand(backboneCommand());
  program.addCommand(predictCommand());
  program.addCommand(serveCommand());
  // Subcommands built elsewhere do not inherit these settings; usage errors must reach main() as exit code 2.
  const configure = (command: Command): void => {
    command.exitOverride().showHelpAfterError();
    command.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/** Runs the CLI and returns the exit code: 0 success, 1 an error the user can act on, 2 a usage error. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    console.error(`covid-ct: ${(error as Error).message}`);
    if (process.env.COVID_CT_DEBUG) console.error(error);
    return 1;
  }
}
