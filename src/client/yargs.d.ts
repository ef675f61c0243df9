/**
 * The part of yargs 18 that the client uses, typed for strict tsc.  yargs 18 ships
 * no declarations and @types/yargs describes 17; this is all we need.  yargs 18 is
 * ESM but exports itself as 'module.exports', so require('yargs') (Node >= 20.19)
 * returns the factory itself.  src/client/cli.ts imports it as a default import
 * (esModuleInterop): that works both under Node's require and in esbuild's bundle
 * (scripts/bundle.mjs), which does not honour the 'module.exports' export name.
 */
declare module 'yargs' {
  namespace yargs {
    type OptionType = 'string' | 'boolean' | 'number' | 'count' | 'array';

    interface OptionSpec {
      alias?: string | readonly string[];
      type?: OptionType;
      describe?: string;
      description?: string;
      requiresArg?: boolean;
      default?: unknown;
      defaultDescription?: string;
      hidden?: boolean;
      group?: string;
      nargs?: number;
    }

    interface Arguments {
      readonly _: (string | number)[];
      readonly $0: string;
      readonly [name: string]: unknown;
    }

    interface Argv {
      scriptName(name: string): Argv;
      usage(text: string): Argv;
      option(name: string, spec: OptionSpec): Argv;
      options(specs: Record<string, OptionSpec>): Argv;
      parserConfiguration(config: Record<string, boolean>): Argv;
      strict(enabled?: boolean): Argv;
      help(name?: string | false, description?: string): Argv;
      alias(name: string, alias: string | readonly string[]): Argv;
      version(version: string | false): Argv;
      version(name: string, description: string, version: string): Argv;
      epilogue(text: string): Argv;
      example(command: string, description: string): Argv;
      wrap(columns: number | null): Argv;
      terminalWidth(): number;
      exitProcess(enabled: boolean): Argv;
      showHelpOnFail(enabled: boolean): Argv;
      fail(handler: ((message: string | undefined, error: Error | undefined, y: Argv) => void) | false): Argv;
      parseSync(): Arguments;
    }
  }

  function yargs(args?: readonly string[], cwd?: string): yargs.Argv;
  export = yargs;
}
