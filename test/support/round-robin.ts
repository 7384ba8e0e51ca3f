// A round-robin TCP proxy standing in for a Kubernetes Service in front of several
// replicas: each new connection goes to the next backend; a backend that refuses the
// connection (a dead replica) is skipped, as kube-proxy does once its endpoint is gone.
import net from 'node:net';

export async function startRoundRobin(backends: () => readonly { host: string; port: number }[]): Promise<{ url: string; close(): Promise<void> }> {
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    const list = backends();
    const attempt = (tries: number) => {
      if (tries >= list.length) return void client.destroy();
      const b = list[next++ % list.length]!;
      const upstream = net.connect(b.port, b.host);
      upstream.once('error', () => {
        if (!upstream.remoteAddress || upstream.connecting) attempt(tries + 1);
        else client.destroy();
      });
      upstream.once('connect', () => {
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        upstream.removeAllListeners('error');
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.resume();
      });
    };
    attempt(0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
