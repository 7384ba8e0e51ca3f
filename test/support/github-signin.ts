// Signing in to a real oddjob server (--auth github) through the fake GitHub, the way
// `oddjob login` does it (the device flow), for tests that need several people.
import type { FakeGitHub } from './fake-github.js';

/** The device flow over HTTP. Returns the oddjob token the server issued to `login`. */
export async function deviceToken(base: string, gh: FakeGitHub, login: string): Promise<string> {
  const post = async (path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text) };
  };
  const start = await post('/auth/device');
  if (start.status !== 200) throw new Error(`POST /auth/device answered ${start.status}: ${start.text}`);
  const { deviceCode, userCode } = start.json() as { deviceCode: string; userCode: string };
  gh.approveDevice(userCode, login);
  const done = await post('/auth/device/token', { deviceCode });
  if (done.status !== 200) throw new Error(`device sign-in of ${login} answered ${done.status}: ${done.text}`);
  return (done.json() as { token: string }).token;
}
