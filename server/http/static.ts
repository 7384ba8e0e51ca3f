// Serves the built web UI (web/dist, from `npm run build:web`) at `/`.
//   /assets/*         hashed file names: cached for a year, immutable; a missing one is a 404
//   other file paths  (anything with an extension) served if present, else 404
//   everything else   index.html, uncached, so client routes like /runs/<id> work on reload
// Never answers under /api, /auth, /healthz, /readyz or /metrics: those belong to
// their own handlers (and an unknown /api path stays a JSON 404).
// If the UI was not built, answers 503 with a sentence saying how to build it.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

const RESERVED = /^\/(api|auth|healthz|readyz|metrics)(\/|$)/;

/** Where web/dist is, from the source tree (tsx) or from the compiled dist/ (the image). */
export function webDistCandidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.resolve(here, '../../web/dist'), path.resolve(here, '../../../web/dist')];
}

export function serveWebUi(opts: { dirs?: string[] } = {}): RequestHandler {
  const dirs = opts.dirs ?? webDistCandidates();
  let ready: { dir: string; assets: RequestHandler; files: RequestHandler } | undefined;

  const resolve = () => {
    if (ready) return ready;
    const dir = dirs.find((d) => existsSync(path.join(d, 'index.html')));
    if (!dir) return undefined;
    ready = {
      dir,
      assets: express.static(path.join(dir, 'assets'), {
        index: false,
        dotfiles: 'ignore',
        fallthrough: false,
        immutable: true,
        maxAge: '365d',
        redirect: false,
      }),
      files: express.static(dir, { index: false, dotfiles: 'ignore', fallthrough: false, redirect: false, maxAge: 0 }),
    };
    return ready;
  };

  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    if (RESERVED.test(req.path)) return next();
    const ui = resolve();
    if (!ui) {
      res
        .status(503)
        .set('Cache-Control', 'no-store')
        .type('text/plain')
        .send('The oddjob web UI is not built into this server. Build it with `npm run build:web` (web/dist), or use the CLI and the API under /api.\n');
      return;
    }
    if (req.path.startsWith('/assets/')) {
      req.url = req.url.slice('/assets'.length);
      return ui.assets(req, res, (err?: unknown) => notFound(res, err));
    }
    if (path.posix.extname(req.path) !== '') {
      if (req.path === '/index.html') return sendIndex(ui.dir, res, next);
      return ui.files(req, res, (err?: unknown) => notFound(res, err));
    }
    return sendIndex(ui.dir, res, next);
  };
}

function sendIndex(dir: string, res: Response, next: NextFunction) {
  res.set('Cache-Control', 'no-cache');
  res.sendFile(path.join(dir, 'index.html'), { dotfiles: 'deny', lastModified: true }, (err) => {
    if (err && !res.headersSent) next(err);
  });
}

function notFound(res: Response, _err: unknown) {
  if (res.headersSent) return;
  res.status(404).set('Cache-Control', 'no-store').type('text/plain').send('not found\n');
}
