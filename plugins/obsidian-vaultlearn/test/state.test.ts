import { describe, expect, it } from "vitest";
import type { Outcome } from "../src/state";
import {
	deriveState,
	formatScore,
	learningMessage,
	MESSAGES,
	noNoteState,
	notRunningMessage,
	pollDelayMs,
	sameState,
	shellQuote,
	toRows,
} from "../src/state";
import type { DaemonStatus, Result, SuggestResponse } from "../src/types";

const NOTE = "Projects/Plan.md";
const VAULT = "/home/me/My Vault";

function ok<T>(value: T): Result<T> {
	return { ok: true, value };
}
const suggestions = (paths: string[]): Result<SuggestResponse> =>
	ok({ note: NOTE, suggestions: paths.map((p, i) => ({ path: p, title: p.replace(/\.md$/, ""), score: 0.9 - i * 0.1, reason: `r${i}` })) });
const status = (s: DaemonStatus): Result<DaemonStatus> => ok(s);
const outcome = (o: Partial<Outcome>): Outcome => ({ note: NOTE, vaultPath: VAULT, ...o });

describe("formatting", () => {
	it("formatScore shows two decimals, a dash for missing scores", () => {
		expect(formatScore(0.73)).toBe("0.73");
		expect(formatScore(0.7349)).toBe("0.73");
		expect(formatScore(0.735)).toBe("0.73"); // binary 0.735 is just below; toFixed is exact about it
		expect(formatScore(1)).toBe("1.00");
		expect(formatScore(0)).toBe("0.00");
		expect(formatScore(-0.25)).toBe("-0.25");
		expect(formatScore(null)).toBe("–");
		expect(formatScore(NaN)).toBe("–");
	});

	it("notRunningMessage names the vault, quoted when it has spaces", () => {
		expect(notRunningMessage("/home/me/notes")).toBe("daemon not running — start `vaultlearn watch /home/me/notes`");
		expect(notRunningMessage(VAULT)).toBe('daemon not running — start `vaultlearn watch "/home/me/My Vault"`');
		expect(notRunningMessage("C:\\Users\\me\\Vault")).toBe("daemon not running — start `vaultlearn watch C:\\Users\\me\\Vault`");
	});

	it("shellQuote escapes characters that are special inside double quotes", () => {
		expect(shellQuote('a "b" $c')).toBe('"a \\"b\\" \\$c"');
	});

	it("learningMessage shows phase and percent", () => {
		expect(learningMessage({ phase: "2024-Q1", progress: 0.42 })).toBe("learning phase 2024-Q1 (42%)");
		expect(learningMessage({ phase: "p", progress: 0.999 })).toBe("learning phase p (100%)");
		expect(learningMessage({ phase: "p", progress: 1.7 })).toBe("learning phase p (100%)");
		expect(learningMessage({ phase: "p", progress: null })).toBe("learning phase p");
		expect(learningMessage({ phase: null, progress: 0.1 })).toBe("learning (10%)");
		expect(learningMessage(undefined)).toBe("learning…");
	});

	it("toRows drops the note itself and marks linked targets", () => {
		const rows = toRows(
			[
				{ path: NOTE, title: "Plan", score: 1, reason: "" },
				{ path: "A.md", title: "A", score: 0.5, reason: "x" },
				{ path: "B.md", title: "B", score: null, reason: "" },
			],
			NOTE,
			new Set(["B.md"]),
		);
		expect(rows).toEqual([
			{ path: "A.md", title: "A", score: "0.50", reason: "x", linked: false },
			{ path: "B.md", title: "B", score: "–", reason: "", linked: true },
		]);
	});
});

describe("deriveState", () => {
	it("daemon.json missing -> daemon not running, with the start command", () => {
		const s = deriveState(outcome({ discovery: { ok: false, reason: "not-running", message: "x" } }));
		expect(s.code).toBe("not-running");
		expect(s.message).toBe('daemon not running — start `vaultlearn watch "/home/me/My Vault"`');
		expect(s.rows).toEqual([]);
	});

	it("connection refused -> daemon not running, with the error as detail", () => {
		const s = deriveState(
			outcome({ suggest: { ok: false, error: { kind: "not-running", timedOut: false, message: "connect ECONNREFUSED" } } }),
		);
		expect(s.code).toBe("not-running");
		expect(s.message).toMatch(/^daemon not running — start `vaultlearn watch/);
		expect(s.detail).toBe("connect ECONNREFUSED");
	});

	it("timeout -> daemon not running, detail says it did not answer", () => {
		const s = deriveState(
			outcome({ suggest: { ok: false, error: { kind: "not-running", timedOut: true, message: "no answer within 5000 ms" } } }),
		);
		expect(s.code).toBe("not-running");
		expect(s.detail).toBe("no answer: no answer within 5000 ms");
	});

	it("401 -> unauthorized; no token file -> unauthorized with its own message", () => {
		expect(deriveState(outcome({ suggest: { ok: false, error: { kind: "unauthorized", status: 401, message: "x" } } }))).toMatchObject({
			code: "unauthorized",
			message: MESSAGES.unauthorized,
		});
		expect(deriveState(outcome({ discovery: { ok: false, reason: "no-token", message: "x" } }))).toMatchObject({
			code: "unauthorized",
			message: MESSAGES.noToken,
		});
	});

	it("malformed daemon.json -> error with the reason", () => {
		const s = deriveState(outcome({ discovery: { ok: false, reason: "invalid", message: ".vaultlearn/daemon.json is not valid JSON" } }));
		expect(s).toMatchObject({ code: "error", message: MESSAGES.invalidConfig, detail: ".vaultlearn/daemon.json is not valid JSON" });
	});

	it("404 -> note not indexed yet", () => {
		const s = deriveState(
			outcome({ suggest: { ok: false, error: { kind: "not-indexed", status: 404, message: "x" } }, status: status({ state: "idle" }) }),
		);
		expect(s).toMatchObject({ code: "not-indexed", message: "note not indexed yet", rows: [], busy: false });
	});

	it("404 while the daemon indexes -> indexing…", () => {
		const s = deriveState(
			outcome({ suggest: { ok: false, error: { kind: "not-indexed", status: 404, message: "x" } }, status: status({ state: "indexing" }) }),
		);
		expect(s).toMatchObject({ code: "indexing", message: "indexing…", busy: true });
	});

	it("404 with text-search results -> rows under a 'not indexed yet' banner", () => {
		const s = deriveState(
			outcome({
				suggest: { ok: false, error: { kind: "not-indexed", status: 404, message: "x" } },
				fallback: suggestions(["T.md"]),
				status: status({ state: "idle" }),
			}),
		);
		expect(s.code).toBe("not-indexed");
		expect(s.banner).toBe(MESSAGES.notIndexedFallback);
		expect(s.rows.map((r) => r.path)).toEqual(["T.md"]);
	});

	it("400 -> bad-request with the daemon's detail; 500 -> error with status", () => {
		expect(
			deriveState(outcome({ suggest: { ok: false, error: { kind: "bad-request", status: 400, message: "note must not contain '..'" } } })),
		).toMatchObject({ code: "bad-request", message: MESSAGES.badRequest, detail: "note must not contain '..'" });
		expect(deriveState(outcome({ suggest: { ok: false, error: { kind: "http", status: 503, message: "busy" } } }))).toMatchObject({
			code: "error",
			detail: "503: busy",
		});
	});

	it("suggestions -> rows, no message; learning adds a banner", () => {
		const s = deriveState(
			outcome({ suggest: suggestions(["A.md", "B.md"]), status: status({ state: "learning", learning: { phase: "p2", progress: 0.3 } }) }),
		);
		expect(s.code).toBe("ok");
		expect(s.message).toBe(null);
		expect(s.banner).toBe("learning phase p2 (30%)");
		expect(s.busy).toBe(true);
		expect(s.rows).toEqual([
			{ path: "A.md", title: "A", score: "0.90", reason: "r0", linked: false },
			{ path: "B.md", title: "B", score: "0.80", reason: "r1", linked: false },
		]);
	});

	it("suggestions while indexing -> rows with an indexing… banner", () => {
		const s = deriveState(outcome({ suggest: suggestions(["A.md"]), status: status({ state: "indexing" }) }));
		expect(s).toMatchObject({ code: "ok", banner: "indexing…", busy: true });
	});

	it("empty list -> no suggestions (idle), indexing… (indexing)", () => {
		expect(deriveState(outcome({ suggest: suggestions([]), status: status({ state: "idle" }) }))).toMatchObject({
			code: "empty",
			message: "no suggestions",
			banner: null,
		});
		expect(deriveState(outcome({ suggest: suggestions([]), status: status({ state: "indexing" }) }))).toMatchObject({
			code: "indexing",
			message: "indexing…",
		});
	});

	it("a failed /status does not hide suggestions", () => {
		const s = deriveState(
			outcome({ suggest: suggestions(["A.md"]), status: { ok: false, error: { kind: "http", status: 500, message: "x" } } }),
		);
		expect(s).toMatchObject({ code: "ok", banner: null, busy: false });
		expect(s.rows).toHaveLength(1);
	});
});

describe("polling and re-render", () => {
	it("polls while the daemon is busy or the note is not indexed, slower when it is down, never when settled", () => {
		const busy = deriveState(outcome({ suggest: suggestions(["A.md"]), status: status({ state: "learning" }) }));
		const idle = deriveState(outcome({ suggest: suggestions(["A.md"]), status: status({ state: "idle" }) }));
		const down = deriveState(outcome({ discovery: { ok: false, reason: "not-running", message: "" } }));
		const notIndexed = deriveState(outcome({ suggest: { ok: false, error: { kind: "not-indexed", message: "" } } }));
		const unauthorized = deriveState(outcome({ suggest: { ok: false, error: { kind: "unauthorized", message: "" } } }));
		expect(pollDelayMs(busy)).toBe(5000);
		expect(pollDelayMs(notIndexed)).toBe(5000);
		expect(pollDelayMs(down)).toBe(15000);
		expect(pollDelayMs(idle)).toBe(null);
		expect(pollDelayMs(unauthorized)).toBe(null);
		expect(pollDelayMs(noNoteState())).toBe(null);
	});

	it("sameState compares by value", () => {
		const a = deriveState(outcome({ suggest: suggestions(["A.md"]) }));
		const b = deriveState(outcome({ suggest: suggestions(["A.md"]) }));
		const c = deriveState(outcome({ suggest: suggestions(["B.md"]) }));
		expect(sameState(a, b)).toBe(true);
		expect(sameState(a, c)).toBe(false);
		expect(sameState(null, a)).toBe(false);
	});
});
