import { afterEach, describe, expect, it } from "vitest";
import { errorFromException, errorFromStatus, VaultlearnClient } from "../src/api";
import { TimeoutError } from "../src/timeout";
import { closedPort, startFakeDaemon, TOKEN } from "./helpers/fakeDaemon";
import type { FakeDaemon } from "./helpers/fakeDaemon";

const STATUS = {
	state: "learning",
	notes: 120,
	links: 340,
	embedded: 118,
	phases: ["p1", "p2"],
	learned_phases: ["p1"],
	pending_phases: ["p2"],
	learning: { phase: "p2", progress: 0.42 },
	future_field: { anything: true },
};

const SUGGEST = {
	note: "Daily/2026 Plan.md",
	suggestions: [
		{ path: "folder/Other.md", title: "Other", score: 0.73, reason: "similar text (0.71); 2 shared neighbours" },
		{ path: "Second.md", title: "Second", score: 0.5, reason: "similar text (0.50)" },
	],
};

let daemon: FakeDaemon | null = null;
afterEach(async () => {
	await daemon?.close();
	daemon = null;
});

async function clientFor(handler: Parameters<typeof startFakeDaemon>[0], token = TOKEN, timeoutMs = 2000) {
	daemon = await startFakeDaemon(handler);
	return new VaultlearnClient({ baseUrl: daemon.baseUrl, token }, { timeoutMs });
}

describe("VaultlearnClient against a local HTTP server", () => {
	it("GET /status parses the body, keeps known fields and sends the bearer token", async () => {
		const client = await clientFor(() => ({ status: 200, body: STATUS }));
		const res = await client.status();
		expect(res).toEqual({
			ok: true,
			value: {
				state: "learning",
				notes: 120,
				links: 340,
				embedded: 118,
				phases: ["p1", "p2"],
				learned_phases: ["p1"],
				pending_phases: ["p2"],
				learning: { phase: "p2", progress: 0.42 },
			},
		});
		expect(daemon!.requests).toHaveLength(1);
		expect(daemon!.requests[0]).toMatchObject({ method: "GET", url: "/status", authorization: `Bearer ${TOKEN}` });
	});

	it("GET /status with only the state field leaves the optional fields absent", async () => {
		const client = await clientFor(() => ({ status: 200, body: { state: "idle" } }));
		const res = await client.status();
		expect(res).toEqual({ ok: true, value: { state: "idle" } });
	});

	it("GET /suggest returns typed suggestions", async () => {
		const client = await clientFor(() => ({ status: 200, body: SUGGEST }));
		const res = await client.suggest("Daily/2026 Plan.md", 10);
		expect(res.ok).toBe(true);
		if (!res.ok) return;
		expect(res.value.note).toBe("Daily/2026 Plan.md");
		expect(res.value.suggestions).toEqual(SUGGEST.suggestions);
	});

	it("encodes paths with spaces, slashes, plus signs, ampersands and unicode in the query", async () => {
		const client = await clientFor(() => ({ status: 200, body: { note: null, suggestions: [] } }));
		const path = "Projekte/Über uns & C++ #1.md";
		await client.suggest(path, 7);
		const url = daemon!.requests[0].url;
		expect(url).toBe("/suggest?note=Projekte%2F%C3%9Cber%20uns%20%26%20C%2B%2B%20%231.md&k=7");
		// What a server's query parser gets back is the original path.
		expect(new URL(url, "http://x").searchParams.get("note")).toBe(path);
		expect(new URL(url, "http://x").searchParams.get("k")).toBe("7");
	});

	it("encodes non-BMP characters (emoji) and CJK as UTF-8", async () => {
		const client = await clientFor(() => ({ status: 200, body: { note: null, suggestions: [] } }));
		const path = "日本語/メモ 🚀.md";
		await client.suggest(path, 3);
		const url = daemon!.requests[0].url;
		expect(url).not.toMatch(/[^\x21-\x7e]/); // only printable ASCII on the wire
		expect(new URL(url, "http://x").searchParams.get("note")).toBe(path);
	});

	it("clamps k to the API's 1..100", async () => {
		const client = await clientFor(() => ({ status: 200, body: { note: null, suggestions: [] } }));
		await client.suggest("a.md", 500);
		await client.suggest("a.md", 0);
		expect(daemon!.requests.map((r) => new URL(r.url, "http://x").searchParams.get("k"))).toEqual(["100", "1"]);
	});

	it("POST /search sends JSON with text and k", async () => {
		const client = await clientFor(() => ({ status: 200, body: { suggestions: SUGGEST.suggestions } }));
		const res = await client.search("group theory ∑", 5);
		expect(res.ok && res.value.suggestions.map((s) => s.path)).toEqual(["folder/Other.md", "Second.md"]);
		expect(res.ok && res.value.note).toBe(null);
		const req = daemon!.requests[0];
		expect(req.method).toBe("POST");
		expect(req.url).toBe("/search");
		expect(req.contentType).toBe("application/json");
		expect(JSON.parse(req.body)).toEqual({ text: "group theory ∑", k: 5 });
	});

	it("POST /reindex, POST /learn and GET /learn", async () => {
		const client = await clientFor((req) =>
			req.method === "GET" && req.url === "/learn"
				? { status: 200, body: { state: "learning", phase: "p2", progress: 0.5 } }
				: { status: 200, body: { queued: true } },
		);
		expect(await client.reindex()).toEqual({ ok: true, value: { queued: true } });
		expect(await client.learn()).toEqual({ ok: true, value: { queued: true } });
		expect(await client.learnState()).toEqual({ ok: true, value: { state: "learning", phase: "p2", progress: 0.5 } });
		expect(daemon!.requests.map((r) => `${r.method} ${r.url}`)).toEqual(["POST /reindex", "POST /learn", "GET /learn"]);
	});

	it("maps 401 (wrong token) to unauthorized with the daemon's detail", async () => {
		const client = await clientFor(() => ({ status: 200, body: SUGGEST }), "wrong-token");
		const res = await client.suggest("a.md", 10);
		expect(res).toEqual({ ok: false, error: { kind: "unauthorized", status: 401, message: "missing or wrong token" } });
	});

	it("maps 404 from /suggest to not-indexed", async () => {
		const client = await clientFor(() => ({ status: 404, body: { detail: "note not indexed: New.md" } }));
		const res = await client.suggest("New.md", 10);
		expect(res).toEqual({ ok: false, error: { kind: "not-indexed", status: 404, message: "note not indexed: New.md" } });
	});

	it("maps 404 from /status to a plain HTTP error, not not-indexed", async () => {
		const client = await clientFor(() => ({ status: 404, body: { detail: "Not Found" } }));
		const res = await client.status();
		expect(res.ok).toBe(false);
		expect(!res.ok && res.error.kind).toBe("http");
	});

	it("maps 400 to bad-request and 500 to http", async () => {
		let status = 400;
		const client = await clientFor(() => ({ status, body: { detail: "path outside the vault" } }));
		expect(await client.suggest("../x.md", 10)).toEqual({
			ok: false,
			error: { kind: "bad-request", status: 400, message: "path outside the vault" },
		});
		status = 500;
		const res = await client.suggest("x.md", 10);
		expect(!res.ok && res.error).toEqual({ kind: "http", status: 500, message: "path outside the vault" });
	});

	it("reports a 2xx body that is not JSON, or not the API's shape, as invalid-response", async () => {
		let reply: { status: number; body: unknown; raw?: boolean } = { status: 200, body: "<html>", raw: true };
		const client = await clientFor(() => reply);
		const a = await client.suggest("x.md", 10);
		expect(!a.ok && a.error.kind).toBe("invalid-response");
		reply = { status: 200, body: { results: [] } };
		const b = await client.suggest("x.md", 10);
		expect(!b.ok && b.error).toEqual({ kind: "invalid-response", status: 200, message: "response does not match the API" });
	});

	it("maps connection refused to not-running", async () => {
		const port = await closedPort();
		const client = new VaultlearnClient({ baseUrl: `http://127.0.0.1:${port}`, token: TOKEN }, { timeoutMs: 2000 });
		const res = await client.status();
		expect(res.ok).toBe(false);
		if (res.ok) return;
		expect(res.error.kind).toBe("not-running");
		expect(res.error.timedOut).toBe(false);
		expect(res.error.message).toMatch(/ECONNREFUSED/);
	});

	it("gives up on a daemon that never answers (timeout) and reports not-running", async () => {
		const client = await clientFor(() => "hang", TOKEN, 150);
		const started = Date.now();
		const res = await client.suggest("x.md", 10);
		const elapsed = Date.now() - started;
		expect(res).toEqual({ ok: false, error: { kind: "not-running", timedOut: true, message: "no answer within 150 ms" } });
		expect(elapsed).toBeGreaterThanOrEqual(140);
		expect(elapsed).toBeLessThan(1500);
	});
});

describe("VaultlearnClient with an injected request function", () => {
	it("passes throw: false so error statuses come back as responses", async () => {
		const seen: unknown[] = [];
		const client = new VaultlearnClient(
			{ baseUrl: "http://127.0.0.1:1", token: "t" },
			{
				request: async (req) => {
					seen.push(req);
					return { status: 200, headers: {}, arrayBuffer: new ArrayBuffer(0), json: null, text: '{"state":"idle"}' };
				},
			},
		);
		await client.status();
		expect(seen).toEqual([
			{
				url: "http://127.0.0.1:1/status",
				method: "GET",
				headers: { Authorization: "Bearer t", Accept: "application/json" },
				throw: false,
			},
		]);
	});

	it("survives a response whose text is missing", async () => {
		const client = new VaultlearnClient(
			{ baseUrl: "http://127.0.0.1:1", token: "t" },
			{ request: async () => ({ status: 503, headers: {}, arrayBuffer: new ArrayBuffer(0), json: null, text: undefined as unknown as string }) },
		);
		expect(await client.status()).toEqual({ ok: false, error: { kind: "http", status: 503, message: "HTTP 503" } });
	});
});

describe("error mapping", () => {
	it("errorFromException distinguishes timeouts from other transport errors", () => {
		expect(errorFromException(new TimeoutError(5000))).toEqual({ kind: "not-running", timedOut: true, message: "no answer within 5000 ms" });
		expect(errorFromException(new Error("net::ERR_CONNECTION_REFUSED"))).toEqual({
			kind: "not-running",
			timedOut: false,
			message: "net::ERR_CONNECTION_REFUSED",
		});
		expect(errorFromException("boom").message).toBe("boom");
	});

	it("errorFromStatus maps statuses and reads {detail} (string or list)", () => {
		expect(errorFromStatus(403, "", true).kind).toBe("unauthorized");
		expect(errorFromStatus(404, '{"detail":"x"}', false)).toEqual({ kind: "http", status: 404, message: "x" });
		expect(errorFromStatus(422, '{"detail":[{"loc":["query","k"]}]}', true)).toEqual({
			kind: "http",
			status: 422,
			message: '[{"loc":["query","k"]}]',
		});
		expect(errorFromStatus(502, "Bad Gateway", true).message).toBe("Bad Gateway");
	});
});
