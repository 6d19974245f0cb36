// A local HTTP server that speaks the daemon's API contract, for tests of the real client.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Recorded {
	method: string;
	/** The raw request target as sent on the wire, e.g. "/suggest?note=a%20b.md&k=10". */
	url: string;
	authorization: string | undefined;
	contentType: string | undefined;
	body: string;
}

export interface Reply {
	status: number;
	body: unknown;
	/** Send body as-is (not JSON-encoded). */
	raw?: boolean;
}

export type Handler = (req: Recorded) => Reply | "hang";

export interface FakeDaemon {
	baseUrl: string;
	port: number;
	requests: Recorded[];
	handler: Handler;
	close(): Promise<void>;
}

export const TOKEN = "s3cret-token";

/** Answers like the daemon: 401 without the right token, else whatever `handler` says. */
export async function startFakeDaemon(handler: Handler): Promise<FakeDaemon> {
	const hanging: http.ServerResponse[] = [];
	const daemon = { requests: [] as Recorded[], handler } as FakeDaemon;
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			const rec: Recorded = {
				method: req.method ?? "",
				url: req.url ?? "",
				authorization: req.headers.authorization,
				contentType: req.headers["content-type"],
				body: Buffer.concat(chunks).toString("utf8"),
			};
			daemon.requests.push(rec);
			if (rec.authorization !== `Bearer ${TOKEN}`) {
				res.writeHead(401, { "Content-Type": "application/json" });
				res.end(JSON.stringify({ detail: "missing or wrong token" }));
				return;
			}
			const reply = daemon.handler(rec);
			if (reply === "hang") {
				hanging.push(res);
				return;
			}
			res.writeHead(reply.status, { "Content-Type": "application/json" });
			res.end(reply.raw ? String(reply.body) : JSON.stringify(reply.body));
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	daemon.port = port;
	daemon.baseUrl = `http://127.0.0.1:${port}`;
	daemon.close = () =>
		new Promise<void>((resolve) => {
			hanging.forEach((r) => r.destroy());
			server.closeAllConnections();
			server.close(() => resolve());
		});
	return daemon;
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
	const server = http.createServer();
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	await new Promise<void>((resolve) => server.close(() => resolve()));
	return port;
}
