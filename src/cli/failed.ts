/** A failure of a command already explained to the user (on stderr); the command exits with `code`. */
export class CommandFailed extends Error {
  constructor(readonly code = 1) {
    super(`exit ${code}`);
  }
}
