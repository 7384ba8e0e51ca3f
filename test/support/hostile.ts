// Malformed and hostile requests for the API, generated deterministically from a
// seed, sent as raw bytes over TCP (so nothing in a client library can tidy them
// up), and the checks every answer must pass. Used by faults.test.ts.
import net from 'node:net';
import { seededRandom } from './faults.js';

type Rng = ReturnType<typeof seededRandom>;

export interface HostileContext {
  /** The served namespace, with `allowed` (the caller may run there) and `closed` (no annotations). */
  namespace: string;
  allowed: string;
  closed: string;
  /** A real run of the caller, for stream and path variants that must fail for another reason. */
  runId: string;
  /** Seconds: the `allowed` Deployment's oddjob.io/max-duration. */
  maxDurationSeconds: number;
}

export interface HostileRequest {
  /** category/variant, for the failure report. */
  label: string;
  /** dev: the --auth dev server (every caller is signed in, so validation is what refuses); github: forged credentials. */
  target: 'dev' | 'github';
  raw: Buffer;
  /** The statuses that count as a correct refusal. */
  expect: readonly number[];
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const CLIENT_ERRORS = Array.from({ length: 100 }, (_, i) => 400 + i);

/** One HTTP/1.1 request as bytes. Content-Length is added for a body unless headers set Transfer-Encoding. */
export function rawRequest(method: string, path: string, headers: Array<[string, string]>, body?: string | Buffer): Buffer {
  const b = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', 'X-Oddjob-Client: faults-test'];
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  const chunked = headers.some(([k]) => k.toLowerCase() === 'transfer-encoding');
  if (b && !chunked) lines.push(`Content-Length: ${b.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  if (!b) return head;
  if (!chunked) return Buffer.concat([head, b]);
  // Chunked: 16 KiB chunks, then the terminator.
  const parts: Buffer[] = [head];
  for (let i = 0; i < b.length; i += 16384) {
    const c = b.subarray(i, i + 16384);
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/** Sends raw bytes and reads the whole answer (the request says Connection: close). */
export function sendRaw(url: string, raw: Buffer, timeoutMs = 20_000): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms (got ${Buffer.concat(chunks).length} bytes)`));
    }, timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    // The server may answer (413, 431) and close before it read everything we sent: a reset
    // while writing is expected then, and what it already answered is what counts.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const parsed = parseResponse(all);
      if (parsed) resolve(parsed);
      else
        reject(
          new Error(`the server closed the connection without an HTTP answer (${all.length} bytes: ${JSON.stringify(all.toString('latin1').slice(0, 200))})`),
        );
    });
    socket.write(raw);
  });
}

function parseResponse(all: Buffer): RawResponse | undefined {
  const end = all.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...headerLines] = all.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const l of headerLines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = all.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const out: Buffer[] = [];
    let i = 0;
    for (;;) {
      const nl = body.indexOf('\r\n', i);
      if (nl < 0) break;
      const size = parseInt(body.subarray(i, nl).toString('latin1'), 16);
      if (!(size > 0)) break;
      out.push(body.subarray(nl + 2, nl + 2 + size));
      i = nl + 2 + size + 2;
    }
    body = Buffer.concat(out);
  } else if (headers['content-length'] !== undefined) {
    body = body.subarray(0, Number(headers['content-length']));
  }
  return { status: Number(m[1]), headers, body: body.toString('utf8') };
}

/** Why an answer is not a clear refusal (undefined: it is one). */
export function checkRefusal(req: HostileRequest, res: RawResponse): string | undefined {
  if (res.status >= 500) return `server error ${res.status}`;
  if (!req.expect.includes(res.status)) return `status ${res.status}, expected ${req.expect.length > 10 ? '4xx' : req.expect.join('|')}`;
  if (!/^application\/json\b/.test(res.headers['content-type'] ?? '')) return `content-type ${res.headers['content-type'] ?? '(none)'}, not JSON`;
  let body: { error?: { code?: unknown; message?: unknown; hint?: unknown } };
  try {
    body = JSON.parse(res.body);
  } catch {
    return `body is not JSON: ${JSON.stringify(res.body.slice(0, 200))}`;
  }
  const e = body?.error;
  if (typeof e?.code !== 'string' || !e.code) return `no error.code in ${res.body.slice(0, 200)}`;
  if (typeof e.message !== 'string' || e.message.length < 5) return `no readable error.message in ${res.body.slice(0, 200)}`;
  if (e.hint !== undefined && typeof e.hint !== 'string') return `error.hint is not a string: ${res.body.slice(0, 200)}`;
  if (Object.keys(body).length !== 1 || Object.keys(e).some((k) => !['code', 'message', 'hint'].includes(k)))
    return `unexpected members in ${res.body.slice(0, 200)}`;
  if (/\n\s+at |node_modules|\.[jt]s:\d+/.test(res.body)) return `a stack trace or source path leaks: ${res.body.slice(0, 300)}`;
  return undefined;
}

// ── the generator ─────────────────────────────────────────────────────────

const JSON_CT: Array<[string, string]> = [['Content-Type', 'application/json']];
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function wsHeaders(extra: Array<[string, string]> = [], omit: string[] = []): Array<[string, string]> {
  const base: Array<[string, string]> = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Version', '13'],
    ['Sec-WebSocket-Key', WS_KEY],
  ];
  return [...base.filter(([k]) => !omit.includes(k)), ...extra];
}

// rawRequest adds "Connection: close"; a WebSocket handshake needs "Connection: Upgrade" instead.
function wsRequest(path: string, headers: Array<[string, string]>, method = 'GET'): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers.map(([k, v]) => `${k}: ${v}`)];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

const randomString = (r: Rng, n: number, alphabet: string) => Array.from({ length: n }, () => alphabet[r.int(0, alphabet.length - 1)]).join('');
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Hostile values for a Kubernetes name field (namespace, deployment, container). */
function hostileNames(r: Rng): unknown[] {
  return [
    '../kube-system',
    '..%2fkube-system',
    '%2e%2e',
    '..',
    '.',
    'kube-system/../default',
    '/etc/passwd',
    'a/b',
    'Default',
    'API',
    'ns\u0000',
    'ns%00',
    'ns\n',
    'ns\r\nX-Evil: 1',
    '\u0000',
    '\u202eipa',
    'ｄｅｆａｕｌｔ',
    'déploiement',
    '💥',
    'a b',
    '-leading',
    'trailing-',
    'a'.repeat(r.int(254, 4000)),
    '',
    ' ',
    '\t',
    123,
    -1,
    1.5,
    null,
    true,
    [],
    {},
    ['default'],
    { $ne: '' },
    randomString(r, r.int(1, 40), '\u0000\u0001\u001f\u007f\u0085\u2028\u2029\ufeff\ud800abc./%'),
  ];
}

type Template = (r: Rng, c: HostileContext) => HostileRequest;

const validRun = (c: HostileContext) => ({ namespace: c.namespace, deployment: c.allowed, command: ['sh', '-c', 'echo pwned'] });
const postRuns = (label: string, body: unknown, expect: readonly number[] = CLIENT_ERRORS, path = '/api/runs'): HostileRequest => ({
  label,
  target: 'dev',
  raw: rawRequest('POST', path, JSON_CT, typeof body === 'string' ? body : JSON.stringify(body)),
  expect,
});

const TEMPLATES: Record<string, Template> = {
  'bad-json': (r) => {
    const bodies = [
      '{',
      '{"namespace":',
      "{'namespace':'x'}",
      '{"a":1,}',
      '[1,2',
      'NaN',
      '{"namespace":"x"} trailing',
      '\u0000',
      '"just a string"',
      'null',
      '123',
      'true',
      '{"command":["a"]/* comment */}',
      '{"namespace":"x\\u12"}',
      '{"a":"\\x41"}',
      '\ufeff{}',
      '{"a":1}{"b":2}',
      randomString(r, r.int(1, 300), '{}[]",:0123456789abc\\ \n\t\u0000\u00ff'),
    ];
    const body = r.pick(bodies);
    return postRuns(`bad-json/${JSON.stringify(body).slice(0, 30)}`, body, [400]);
  },
  'huge-body': (r, c) => {
    if (r.next() < 0.15) {
      // Announces 10 GiB and sends nothing: refused on the header alone, without waiting for a byte.
      return {
        label: 'huge-body/announced-10GiB',
        target: 'dev',
        raw: rawRequest('POST', '/api/runs', [...JSON_CT, ['Content-Length', String(10 * 2 ** 30)]]),
        expect: [413],
      };
    }
    const size = r.int(65 * 1024, 1536 * 1024);
    const body = JSON.stringify({ ...validRun(c), reason: 'x'.repeat(size) });
    const chunked = r.next() < 0.3;
    return {
      label: `huge-body/${chunked ? 'chunked' : 'length'}/${size}`,
      target: 'dev',
      raw: rawRequest('POST', r.pick(['/api/runs', '/api/runs/preview']), chunked ? [...JSON_CT, ['Transfer-Encoding', 'chunked']] : JSON_CT, body),
      expect: [413],
    };
  },
  'deep-nesting': (r, c) => {
    const depth = r.int(500, 9000);
    const kind = r.int(0, 3);
    const nest = (inner: string) => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
    const bodies = [
      nest('1'),
      `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
      `{"namespace":"${c.namespace}","deployment":"${c.allowed}","command":${nest('"sh"')}}`,
      `{"namespace":"${c.namespace}","deployment":"${c.allowed}","command":["sh"],"extra":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
    ];
    return postRuns(`deep-nesting/${kind}/${depth}`, bodies[kind]!, [400, 413]);
  },
  'bad-field': (r, c) => {
    const base = validRun(c) as Record<string, unknown>;
    const field = r.pick(['namespace', 'deployment', 'container']);
    const value = r.pick(hostileNames(r));
    return postRuns(`bad-field/${field}=${JSON.stringify(value).slice(0, 30)}`, { ...base, [field]: value }, [400, 404]);
  },
  'bad-command': (r, c) => {
    const commands: unknown[] = [
      'sh -c "echo pwned"',
      [],
      [''],
      [1, 2],
      [null],
      ['sh', '-c', 'echo a\u0000b'],
      ['\u0000'],
      ['sh', {}],
      [['sh']],
      Array.from({ length: r.int(257, 400) }, () => 'x'),
      ['x'.repeat(r.int(8193, 20000))],
      Array.from({ length: 5 }, () => 'y'.repeat(7000)),
      { 0: 'sh' },
      null,
      true,
      42,
    ];
    const command = r.pick(commands);
    return postRuns(`bad-command/${JSON.stringify(command).slice(0, 30)}`, { ...validRun(c), command }, [400]);
  },
  'bad-option': (r, c) => {
    const options: Array<Record<string, unknown>> = [
      { reason: 'r'.repeat(r.int(501, 5000)) },
      { reason: 123 },
      { reason: {} },
      { interactive: 'true' },
      { interactive: 1 },
      { interactive: null },
      { tty: 'yes' },
      { tty: true },
      { tty: true, interactive: false },
      { timeoutSeconds: -1 },
      { timeoutSeconds: 0 },
      { timeoutSeconds: 1.5 },
      { timeoutSeconds: '60' },
      { timeoutSeconds: 1e308 },
      { timeoutSeconds: 7 * 24 * 3600 + 1 },
      { timeoutSeconds: c.maxDurationSeconds + r.int(1, 10_000) },
      { timeoutSeconds: null },
      { noSidecars: 'false' },
    ];
    const o = r.pick(options);
    return postRuns(`bad-option/${JSON.stringify(o).slice(0, 40)}`, { ...validRun(c), ...o }, [400]);
  },
  'extra-field': (r, c) => {
    const extras: string[] = [
      '"privileged":true',
      '"image":"evil/image:latest"',
      '"securityContext":{"privileged":true}',
      '"hostPID":true',
      '"user":"root"',
      '"__proto__":{"admin":true}',
      '"constructor":{"prototype":{"admin":true}}',
      '"serviceAccountName":"default"',
      '"env":[{"name":"A","value":"B"}]',
      // Duplicate keys: the last one wins, and it is invalid.
      `"namespace":"../${c.namespace}"`,
      `"deployment":"${c.allowed}/../${c.closed}"`,
    ];
    const extra = r.pick(extras);
    const body = `${JSON.stringify(validRun(c)).slice(0, -1)},${extra}}`;
    return postRuns(`extra-field/${extra.slice(0, 30)}`, body, [400]);
  },
  'refused-target': (r, c) => {
    const targets: Array<[Record<string, unknown>, number]> = [
      [{ deployment: c.closed }, 403],
      [{ namespace: 'kube-system', deployment: 'coredns' }, 404],
      [{ namespace: 'default', deployment: c.allowed }, 404],
      [{ deployment: `no-such-${randomString(r, 6, 'abcdefghij')}` }, 404],
      [{ deployment: 'a..b' }, 404],
      [{ deployment: c.allowed, container: 'no-such-container' }, 400],
    ];
    const [patch, status] = r.pick(targets);
    const path = r.pick(['/api/runs', '/api/runs/preview']);
    return postRuns(`refused-target${path.slice(9)}/${JSON.stringify(patch).slice(0, 40)}`, { ...validRun(c), ...patch }, [status], path);
  },
  'content-type': (r, c) => {
    const body = JSON.stringify(validRun(c));
    const variants: Array<[Array<[string, string]>, string]> = [
      [[['Content-Type', 'text/plain']], body],
      [[['Content-Type', 'application/x-www-form-urlencoded']], `namespace=${c.namespace}&deployment=${c.allowed}&command=sh`],
      [[['Content-Type', 'multipart/form-data; boundary=x']], `--x\r\nContent-Disposition: form-data; name="namespace"\r\n\r\n${c.namespace}\r\n--x--\r\n`],
      [[], body],
      [[['Content-Type', 'application/json; charset=utf-16']], body],
      [[['Content-Type', 'application/json; charset=latin1']], body],
      [[['Content-Type', 'application/vnd.api+json']], body],
      [[['Content-Type', 'application/jsonx']], body],
      [[['Content-Type', 'text/json']], body],
      [[['Content-Type', '*/*']], body],
      [
        [
          ['Content-Type', 'application/json'],
          ['Content-Encoding', 'gzip'],
        ],
        body,
      ],
      [
        [
          ['Content-Type', 'application/json'],
          ['Content-Encoding', 'br'],
        ],
        body,
      ],
      [[['Content-Type', '']], body],
    ];
    const [headers, b] = r.pick(variants);
    return {
      label: `content-type/${headers.map((h) => h.join('=')).join(',') || 'none'}`,
      target: 'dev',
      raw: rawRequest('POST', '/api/runs', headers, b),
      expect: [400, 415],
    };
  },
  'path-trick': (r, c) => {
    const ids = [
      '..',
      '..%2f..%2f',
      '%2e%2e',
      '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '....%2f%2f',
      '%00',
      '%ZZ',
      '%E0%A4%A',
      'AAAAAAAAAAAA',
      c.runId.toUpperCase(),
      'a'.repeat(r.int(13, 3000)),
      'abc%0d%0aSet-Cookie:%20x=1',
      '%3Cscript%3E',
      '%F0%9F%92%A9',
      'zzzzzzzzzzzz',
      `${c.runId}%00`,
      `${c.runId}.json`,
      encodeURIComponent(randomString(r, 12, '\u0000./\\%?#é')),
    ];
    const id = r.pick(ids);
    const [method, path] = r.pick([
      ['GET', `/api/runs/${id}`],
      ['POST', `/api/runs/${id}/cancel`],
      ['GET', `/api/runs/${id}/stream`],
    ] as const);
    return {
      label: `path-trick/${method} ${path.slice(0, 50)}`,
      target: 'dev',
      raw: rawRequest(method, path, method === 'POST' ? JSON_CT : [], method === 'POST' ? '{}' : undefined),
      expect: [400, 404],
    };
  },
  'raw-path': (r, c) => {
    const paths = [
      '/api/runs/../../etc/passwd',
      '/api/%2e%2e/%2e%2e/etc/passwd',
      '/api/runs/%2fetc%2fpasswd',
      '/api//runs//',
      '/api/audit/../runs',
      `/api/runs/${c.runId}/../../audit/verify`,
      '/api/runs/./preview',
      '/api/\\..\\..\\etc\\passwd',
      '/api/nope',
      '/api/runs/x/y/z',
      `/api/runs/${c.runId}/cancel/extra`,
      '/api/whoami/..;/audit',
      '/api/.env',
      '/api/%252e%252e/runs',
    ];
    const path = r.pick(paths);
    const method = r.pick(['GET', 'POST', 'DELETE']);
    return {
      label: `raw-path/${method} ${path}`,
      target: 'dev',
      raw: rawRequest(method, path, method === 'POST' ? JSON_CT : [], method === 'POST' ? '{}' : undefined),
      expect: [400, 404],
    };
  },
  'wrong-method': (r, c) => {
    const [method, path] = r.pick([
      ['PUT', '/api/runs'],
      ['PATCH', '/api/runs'],
      ['DELETE', '/api/runs'],
      ['DELETE', `/api/runs/${c.runId}`],
      ['PUT', `/api/runs/${c.runId}`],
      ['POST', '/api/whoami'],
      ['POST', '/api/audit'],
      ['DELETE', '/api/audit'],
      ['POST', '/api/deployments'],
      ['GET', `/api/runs/${c.runId}/cancel`],
      ['TRACE', '/api/runs'],
      ['PROPFIND', '/api/runs'],
    ] as const);
    const body = JSON.stringify(validRun(c));
    return {
      label: `wrong-method/${method} ${path.replace(c.runId, ':id')}`,
      target: 'dev',
      raw: rawRequest(method, path, JSON_CT, body),
      expect: [400, 404, 405],
    };
  },
  'query-trick': (r, c) => {
    const queries = [
      '/api/runs?limit=-1',
      '/api/runs?limit=0',
      '/api/runs?limit=abc',
      '/api/runs?limit=1e9',
      '/api/runs?limit=501',
      '/api/runs?limit=1&limit=2',
      `/api/runs?namespace=${c.namespace}&namespace=x`,
      '/api/runs?namespace[]=x',
      '/api/runs?namespace[$ne]=x',
      '/api/runs?__proto__[admin]=1',
      '/api/runs?constructor[prototype][admin]=1',
      '/api/runs?status=bogus',
      '/api/runs?mine=maybe',
      '/api/runs?cursor=!!!',
      '/api/runs?cursor=YTox',
      `/api/runs?cursor=${Buffer.from('r:99999999999999999999').toString('base64url')}`,
      `/api/runs?cursor=${'A'.repeat(201)}`,
      '/api/runs?foo=bar',
      '/api/runs?namespace=%00',
      '/api/runs?deployment=../x',
      '/api/runs?namespace=..%2F..',
      '/api/runs?status=running&status=failed',
      '/api/audit?since=yesterday',
      '/api/audit?runId=../x',
      '/api/audit?type=run.hacked',
      '/api/audit?limit=100000',
      `/api/audit?user=${'u'.repeat(101)}`,
      '/api/audit?cursor=garbage!',
      `/api/audit?cursor=${Buffer.from('r:5').toString('base64url')}`,
      '/api/audit?x=1',
      '/api/audit?runId=a&runId=b',
      '/api/audit/export?limit=5',
      '/api/audit/export?cursor=abc',
      '/api/audit/export?until=not-a-date',
      '/api/deployments?namespace=kube-system',
      '/api/deployments?namespace=../x',
      `/api/deployments?namespace=${c.namespace}&namespace=x`,
      '/api/deployments?extra=1',
      `/api/deployments?namespace=${'n'.repeat(64)}`,
      '/api/runs?limit=%ZZ',
      '/api/runs?%ZZ=1',
    ];
    const q = r.pick(queries);
    return { label: `query-trick/${q.slice(0, 60)}`, target: 'dev', raw: rawRequest('GET', q, []), expect: [400, 404] };
  },
  'forged-auth': (r, c) => {
    const headers: Array<Array<[string, string]>> = [
      [['Authorization', `Bearer ${randomString(r, r.int(1, 100), B64URL)}`]],
      [['Authorization', `Bearer ${randomString(r, r.int(101, 4000), B64URL)}`]],
      [['Authorization', 'Basic YWxpY2U6cGFzc3dvcmQ=']],
      [['Authorization', `bearer ${randomString(r, 40, B64URL)}`]],
      [['Authorization', 'Bearer']],
      [['Authorization', 'Bearer a b']],
      [['Authorization', `Bearer ${randomString(r, 20, B64URL)}.${randomString(r, 40, B64URL)}.${randomString(r, 30, B64URL)}`]],
      [['Authorization', 'Bearer \u00ff\u00fe\u00e9']],
      [['Authorization', '']],
      [['Authorization', `Token ${randomString(r, 40, B64URL)}`]],
      [
        ['Authorization', `Bearer ${randomString(r, 40, B64URL)}`],
        ['Authorization', `Bearer ${randomString(r, 40, B64URL)}`],
      ],
      [['Cookie', `oddjob_session=${randomString(r, r.int(1, 200), B64URL)}`]],
      [['Cookie', 'oddjob_session=%%%; oddjob_session=%E0%A4%A']],
      [['Cookie', `oddjob_session=${'s'.repeat(r.int(1000, 7000))}`]],
      [['Cookie', 'oddjob_session="unterminated']],
      [
        ['Cookie', `oddjob_session=${randomString(r, 43, B64URL)}`],
        ['Origin', 'https://evil.example'],
      ],
    ];
    const h = r.pick(headers);
    const [method, path, body] = r.pick([
      ['GET', '/api/whoami', undefined],
      ['GET', '/api/runs', undefined],
      ['GET', `/api/runs/${c.runId}`, undefined],
      ['POST', '/api/runs', JSON.stringify(validRun(c))],
      ['GET', '/api/audit', undefined],
      ['GET', '/api/audit/verify', undefined],
      ['POST', `/api/runs/${c.runId}/cancel`, '{}'],
      ['GET', '/auth/tokens', undefined],
    ] as const);
    return {
      label: `forged-auth/${method} ${path.replace(c.runId, ':id')} ${h.map(([k, v]) => `${k}=${v.slice(0, 16)}`).join(',')}`,
      target: 'github',
      raw: rawRequest(method, path, body ? [...JSON_CT, ...h] : h, body),
      expect: [401, 403],
    };
  },
  'forged-stream': (r, c) => {
    const h = r.pick<Array<[string, string]>>([
      [['Authorization', `Bearer ${randomString(r, r.int(1, 100), B64URL)}`]],
      [['Authorization', 'Basic YWxpY2U6cGFzc3dvcmQ=']],
      [
        ['Cookie', `oddjob_session=${randomString(r, 43, B64URL)}`],
        ['Origin', 'http://127.0.0.1'],
      ],
      [],
    ]);
    return {
      label: `forged-stream/${h.map(([k]) => k).join(',') || 'anonymous'}`,
      target: 'github',
      raw: wsRequest(`/api/runs/${c.runId}/stream?from=0&follow=1`, wsHeaders(h)),
      expect: [401, 403, 404],
    };
  },
  'bad-upgrade': (r, c) => {
    const variants: Array<[string, string, Array<[string, string]>, string, number[]]> = [
      ['bad id', `/api/runs/..%2f..%2f/stream`, wsHeaders(), 'GET', [400]],
      ['bad percent', `/api/runs/%E0%A4%A/stream`, wsHeaders(), 'GET', [400]],
      ['NUL id', `/api/runs/%00/stream`, wsHeaders(), 'GET', [400]],
      ['unknown run', `/api/runs/zzzzzzzzzzzz/stream`, wsHeaders(), 'GET', [404]],
      ['from=-1', `/api/runs/${c.runId}/stream?from=-1`, wsHeaders(), 'GET', [400]],
      ['from=abc', `/api/runs/${c.runId}/stream?from=abc`, wsHeaders(), 'GET', [400]],
      ['from=1e5', `/api/runs/${c.runId}/stream?from=1e5`, wsHeaders(), 'GET', [400]],
      ['from=huge', `/api/runs/${c.runId}/stream?from=99999999999999999999`, wsHeaders(), 'GET', [400]],
      ['evil origin', `/api/runs/${c.runId}/stream`, wsHeaders([['Origin', 'https://evil.example']]), 'GET', [403]],
      ['null origin', `/api/runs/${c.runId}/stream`, wsHeaders([['Origin', 'null']]), 'GET', [403]],
      ['no key', `/api/runs/${c.runId}/stream`, wsHeaders([], ['Sec-WebSocket-Key']), 'GET', [400]],
      ['bad key', `/api/runs/${c.runId}/stream`, [...wsHeaders([], ['Sec-WebSocket-Key']), ['Sec-WebSocket-Key', 'short']], 'GET', [400]],
      ['version 7', `/api/runs/${c.runId}/stream`, [...wsHeaders([], ['Sec-WebSocket-Version']), ['Sec-WebSocket-Version', '7']], 'GET', [400, 426]],
      ['no version', `/api/runs/${c.runId}/stream`, wsHeaders([], ['Sec-WebSocket-Version']), 'GET', [400, 426]],
      ['upgrade h2c', `/api/runs/${c.runId}/stream`, [...wsHeaders([], ['Upgrade']), ['Upgrade', 'h2c']], 'GET', [400]],
      ['POST', `/api/runs/${c.runId}/stream`, wsHeaders(), 'POST', [400, 405]],
      ['bad protocol', `/api/runs/${c.runId}/stream`, wsHeaders([['Sec-WebSocket-Protocol', ',,,']]), 'GET', [400]],
      ['wrong path', `/api/runs/${c.runId}/streams`, wsHeaders(), 'GET', [404]],
      ['other path', '/ws', wsHeaders(), 'GET', [404]],
      ['traversal', `/api/runs/${c.runId}/stream/../../audit`, wsHeaders(), 'GET', [404]],
    ];
    const [name, path, headers, method, expect] = r.pick(variants);
    return { label: `bad-upgrade/${name}`, target: 'dev', raw: wsRequest(path, headers, method), expect };
  },
  'bad-http': (r) => {
    const variants: Array<[string, Buffer, number[]]> = [
      ['control char in path', Buffer.from('GET /api/runs/\u0001 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 'latin1'), [400]],
      ['space in path', Buffer.from('GET /api/ru ns HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 'latin1'), [400]],
      ['bad header name', Buffer.from('GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\nConnection: close\r\n\r\n', 'latin1'), [400]],
      ['header without colon', Buffer.from('GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nnocolon\r\nConnection: close\r\n\r\n', 'latin1'), [400]],
      [
        'huge header',
        Buffer.from(`GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'b'.repeat(r.int(17_000, 40_000))}\r\nConnection: close\r\n\r\n`, 'latin1'),
        [431],
      ],
      ['HTTP/9.9', Buffer.from('GET /api/runs HTTP/9.9\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 'latin1'), [400]],
      [
        'bad content-length',
        Buffer.from(
          'POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{}',
          'latin1',
        ),
        [400],
      ],
      [
        'negative content-length',
        Buffer.from(
          'POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: -5\r\nConnection: close\r\n\r\n{}',
          'latin1',
        ),
        [400],
      ],
      [
        'smuggling CL+TE',
        Buffer.from(
          'POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
          'latin1',
        ),
        [400],
      ],
      [
        'double content-length',
        Buffer.from(
          'POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}',
          'latin1',
        ),
        [400],
      ],
      [
        'bad chunk',
        Buffer.from(
          'POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
          'latin1',
        ),
        [400],
      ],
      ['garbage', Buffer.from(`${randomString(r, r.int(5, 200), 'ABC \u0000\u0001xyz/\r\n:')}\r\n\r\n`, 'latin1'), [400]],
    ];
    const [name, raw, expect] = r.pick(variants);
    return { label: `bad-http/${name}`, target: 'dev', raw, expect };
  },
};

/** The kinds of request generated (every one appears at least once in a batch of this many or more). */
export const HOSTILE_CATEGORIES: readonly string[] = Object.keys(TEMPLATES);

/**
 * `count` requests from `seed`: every template at least once (in a fixed order),
 * the rest drawn at random. The same seed always gives the same requests.
 */
export function hostileRequests(seed: number, count: number, ctx: HostileContext): HostileRequest[] {
  const r = seededRandom(seed);
  const names = Object.keys(TEMPLATES);
  const out: HostileRequest[] = [];
  for (let i = 0; i < count; i++) {
    const name = i < names.length ? names[i]! : r.pick(names);
    out.push(TEMPLATES[name]!(r, ctx));
  }
  return out;
}
