/**
 * The socket setup the baseline servers share with the hub: loopback, a free
 * port, path /v1/device, the Pulsewire subprotocol, no compression, the
 * hub's default message limit. Baselines differ only in what they do per frame.
 */
import { WebSocketServer } from 'ws';
import { SUBPROTOCOL } from '../../src/protocol/index.js';

/** `port` 0 (default): a free one; a given port lets a restarted baseline take the same URL. */
export function listenLikeHub(port = 0): Promise<{ server: WebSocketServer; port: number }> {
  return new Promise((resolve) => {
    const server: WebSocketServer = new WebSocketServer({
      host: '127.0.0.1', port, path: '/v1/device', perMessageDeflate: false, maxPayload: 65_536,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    }, () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}
