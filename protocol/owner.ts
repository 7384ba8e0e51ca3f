// Who started a run, decided the same way by the server (authorization) and the
// web UI (which controls to offer). Identity is GitHub's numeric user id where both
// sides have one: a login can be renamed and registered again by someone else, who
// must not inherit the runs of its previous holder. Logins decide only where there
// is no id (--auth dev, runs recorded before ids were kept).

export interface RunOwner {
  user: string;
  userId?: number;
}
export interface Person {
  login: string;
  id?: number;
}

export function isRunOwner(run: RunOwner, person: Person): boolean {
  if (run.userId !== undefined && person.id !== undefined) return run.userId === person.id;
  return run.user.toLowerCase() === person.login.toLowerCase();
}
