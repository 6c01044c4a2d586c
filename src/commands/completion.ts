import yargs, { type ArgumentsCamelCase, type Argv } from 'yargs';

const SHELLS = ['bash', 'zsh'] as const;
type Shell = (typeof SHELLS)[number];

interface CompletionArgs {
  shell?: Shell;
}

export const command = 'completion [shell]';
export const describe = "Print the shell completion script (yargs'), for bash or zsh";

export function builder(y: Argv): Argv<CompletionArgs> {
  return y
    .positional('shell', {
      choices: SHELLS,
      describe: 'The shell the script is for (default: the one $SHELL names)',
    })
    .example('$0 completion bash > /etc/bash_completion.d/airgap-bundle', 'Completion for every bash user')
    .example('$0 completion zsh > "${fpath[1]}/_airgap-bundle"', 'Completion for zsh')
    .epilog(
      'The script asks airgap-bundle itself for the words to offer (--get-yargs-completions), so it follows the commands and options of the version installed. Exit codes: 0 printed, 2 another shell.',
    ) as unknown as Argv<CompletionArgs>;
}

export function handler(argv: ArgumentsCamelCase<CompletionArgs>): void {
  printCompletionScript(argv.shell ?? shellOfEnvironment());
}

/** The shell `$SHELL` (or zsh's own `$ZSH_NAME`) names, bash for any other. */
function shellOfEnvironment(): Shell {
  return [process.env.SHELL, process.env.ZSH_NAME].some((s) => s?.includes('zsh')) ? 'zsh' : 'bash';
}

/**
 * Prints yargs' completion script for `shell` on stdout. yargs picks its template from `$SHELL`
 * when an instance is made, so one is made with the environment naming that shell, then put back.
 */
function printCompletionScript(shell: Shell): void {
  const saved = { SHELL: process.env.SHELL, ZSH_NAME: process.env.ZSH_NAME };
  process.env.SHELL = `/bin/${shell}`;
  delete process.env.ZSH_NAME;
  try {
    yargs([]).scriptName('airgap-bundle').showCompletionScript();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}
