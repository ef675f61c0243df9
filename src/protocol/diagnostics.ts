/**
 * The texts rexecd sends to a client.  Each goes out as "\001" + text + "\n" on the
 * main connection, after which both connections close.  The texts are the Solaris
 * page's (kept exact: scripts match on them), plus two of ours for the stderr port.
 */
export const Diagnostic = {
  badStderrPort: 'Bad stderr port.',
  cantConnectStderr: "Can't connect to stderr port.",
  usernameTooLong: 'username too long',
  passwordTooLong: 'password too long',
  commandTooLong: 'command too long',
  loginIncorrect: 'Login incorrect.',
  noRemoteDirectory: 'No remote directory.',
  tryAgain: 'Try again.',
} as const;

export type DiagnosticText = (typeof Diagnostic)[keyof typeof Diagnostic];

/** The bytes of a diagnostic on the wire: flag byte, text, newline. */
export function diagnosticBytes(text: DiagnosticText): Buffer {
  return Buffer.from(`\x01${text}\n`, 'latin1');
}

/** The status byte that tells the client every check passed. */
export const STATUS_OK: Buffer = Buffer.from([0]);
