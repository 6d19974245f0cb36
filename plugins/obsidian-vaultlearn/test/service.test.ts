import { afterEach, describe, expect, it } from "vitest";
import { DAEMON_FILE, TOKEN_FILE } from "../src/discovery";
import { SEARCH_TEXT_LIMIT, SuggestionService, truncateText } from "../src/service";
import type { VaultlearnSettings } from "../src/settingsModel";
import { DEFAULT_SETTINGS } from "../src/settingsModel";
import type { FakeDaemon, Handler } from "./helpers/fakeDaemon";
import { startFakeDaemon, TOKEN } from "./helpers/fakeDaemon";
import { memoryReader } from "./helpers/memoryReader";

let daemon: FakeDaemon | null = null;
afterEach(async () => {
	await daemon?.close();
	daemon = null;
});

const SUGGESTIONS = [
	{ path: "folder/Other.md", title: "Other", score: 0.73, reason: "similar text (0.71)" },
	{ path: "Linked.md", title: "Linked", score: 0.6, reason: "2 shared neighbours" },
];

async function setup(handler: Handler, opts: { settings?: Partial<VaultlearnSettings>; noteText?: string | null; files?: Record<string, string> } = {}) {
	daemon = await startFakeDaemon(handler);
	const files = opts.files ?? {
		[DAEMON_FILE]: JSON.stringify({ host: "127.0.0.1", port: daemon.port, pid: 1, started: "2026-11-23T10:00:00+00:00" }),
		[TOKEN_FILE]: `${TOKEN}\n`,
	};
	const settings = { ...DEFAULT_SETTINGS, ...opts.settings };
	return new SuggestionService({
		reader: memoryReader(files),
		settings: () => settings,
		vaultPath: () => "/home/me/vault",
		linked: (note) => new Set(note === "Plan.md" ? ["Linked.md"] : []),
		readNote: async () => (opts.noteText === undefined ? "some text" : opts.noteText),
	});
}

describe("SuggestionService end to end (discovery files + HTTP)", () => {
	it("finds the daemon through daemon.json and token and lists suggestions", async () => {
		const service = await setup((req) =>
			req.url.startsWith("/suggest")
				? { status: 200, body: { note: "Plan.md", suggestions: SUGGESTIONS } }
				: { status: 200, body: { state: "idle", notes: 3 } },
		);
		const state = await service.load("Plan.md");
		expect(state.code).toBe("ok");
		expect(state.rows).toEqual([
			{ path: "folder/Other.md", title: "Other", score: "0.73", reason: "similar text (0.71)", linked: false },
			{ path: "Linked.md", title: "Linked", score: "0.60", reason: "2 shared neighbours", linked: true },
		]);
		const urls = daemon!.requests.map((r) => r.url).sort();
		expect(urls).toEqual(["/status", "/suggest?note=Plan.md&k=10"]);
	});

	it("asks for the configured k", async () => {
		const service = await setup(() => ({ status: 200, body: { note: "Plan.md", suggestions: [], state: "idle" } }), { settings: { k: 25 } });
		await service.load("Plan.md");
		expect(daemon!.requests.some((r) => r.url === "/suggest?note=Plan.md&k=25")).toBe(true);
	});

	it("on 404 searches by the note's text and marks the rows as a text match", async () => {
		const service = await setup(
			(req) => {
				if (req.url.startsWith("/suggest")) return { status: 404, body: { detail: "not indexed" } };
				if (req.url === "/search") return { status: 200, body: { suggestions: [SUGGESTIONS[0]] } };
				return { status: 200, body: { state: "idle" } };
			},
			{ noteText: "x".repeat(SEARCH_TEXT_LIMIT + 500) },
		);
		const state = await service.load("New note.md");
		expect(state.code).toBe("not-indexed");
		expect(state.banner).toBe("note not indexed yet — showing notes with similar text");
		expect(state.rows.map((r) => r.path)).toEqual(["folder/Other.md"]);
		const search = daemon!.requests.find((r) => r.url === "/search")!;
		expect(JSON.parse(search.body)).toEqual({ text: "x".repeat(SEARCH_TEXT_LIMIT), k: 10 });
	});

	it("on 404 for an empty note it does not search and says the note is not indexed", async () => {
		const service = await setup((req) => (req.url.startsWith("/suggest") ? { status: 404, body: { detail: "x" } } : { status: 200, body: { state: "idle" } }), {
			noteText: "  \n",
		});
		const state = await service.load("Empty.md");
		expect(state).toMatchObject({ code: "not-indexed", message: "note not indexed yet", rows: [] });
		expect(daemon!.requests.some((r) => r.url === "/search")).toBe(false);
	});

	it("a stale token gives the unauthorized state", async () => {
		const service = await setup(() => ({ status: 200, body: {} }), { settings: { token: "old-token" } });
		const state = await service.load("Plan.md");
		expect(state.code).toBe("unauthorized");
	});

	it("no discovery files gives 'daemon not running' without any request", async () => {
		const service = await setup(() => ({ status: 200, body: {} }), { files: {} });
		const state = await service.load("Plan.md");
		expect(state.code).toBe("not-running");
		expect(state.message).toBe("daemon not running — start `vaultlearn watch /home/me/vault`");
		expect(daemon!.requests).toHaveLength(0);
	});

	it("describeConnection summarises /status", async () => {
		const service = await setup(() => ({
			status: 200,
			body: { state: "learning", notes: 3, links: 5, embedded: 3, learning: { phase: "p1", progress: 0.5 } },
		}));
		expect(await service.describeConnection()).toBe(
			`Connected to http://127.0.0.1:${daemon!.port}: learning phase p1 (50%), 3 notes, 5 links, 3 embedded`,
		);
	});

	it("describeConnection explains a rejected token", async () => {
		const service = await setup(() => ({ status: 200, body: {} }), { settings: { token: "bad" } });
		expect(await service.describeConnection()).toMatch(/^token rejected \(401\)/);
	});

	it("describeConnection explains a missing daemon", async () => {
		const down = await setup(() => ({ status: 200, body: {} }), { files: {} });
		expect(await down.describeConnection()).toBe("daemon not running — start `vaultlearn watch /home/me/vault`");
	});
});

describe("truncateText", () => {
	it("keeps short text and cuts long text to the limit", () => {
		expect(truncateText("abc", 5)).toBe("abc");
		expect(truncateText("abcdef", 4)).toBe("abcd");
	});

	it("never splits a surrogate pair (emoji)", () => {
		const text = "ab🚀cd"; // the rocket takes two UTF-16 units, at indices 2 and 3
		expect(truncateText(text, 3)).toBe("ab");
		expect(truncateText(text, 4)).toBe("ab🚀");
	});
});
