/** @module What a command talks to: its output streams, environment and stop signal (the binary wires real ones; tests, their own). */
export interface IO {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Standard output is a terminal (the console sink prints tables there). */
  stdoutIsTTY?: boolean;
  env: NodeJS.ProcessEnv;
  /** Aborted to stop a running pipeline (the binary wires SIGINT/SIGTERM here). */
  signal?: AbortSignal;
}

/** A text output, and whether a person watches it. */
export interface Output {
  write(text: string): void;
  isTTY: boolean;
}

/** The process's standard output. */
export const processStdout = (): Output => ({ write: (s) => process.stdout.write(s), isTTY: !!process.stdout.isTTY });

/** A command's standard output. */
export const ioStdout = (io: IO): Output => ({ write: io.stdout, isTTY: !!io.stdoutIsTTY });
