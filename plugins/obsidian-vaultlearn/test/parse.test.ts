import { describe, expect, it } from "vitest";
import { errorDetail, parseLearnState, parseStatus, parseSuggestion, parseSuggestResponse, reasonText, titleFromPath } from "../src/parse";

describe("response parsing", () => {
	it("titleFromPath drops folders and the .md extension", () => {
		expect(titleFromPath("a/b/Other note.md")).toBe("Other note");
		expect(titleFromPath("Top.MD")).toBe("Top");
		expect(titleFromPath("img/pic.png")).toBe("pic.png");
	});

	it("parseSuggestion fills a missing title from the path and a missing score with null", () => {
		expect(parseSuggestion({ path: "x/Y.md" })).toEqual({ path: "x/Y.md", title: "Y", score: null, reason: "" });
		expect(parseSuggestion({ path: "x/Y.md", title: "", score: "0.5" })).toEqual({ path: "x/Y.md", title: "Y", score: null, reason: "" });
	});

	it("parseSuggestion drops items without a path", () => {
		expect(parseSuggestion({ title: "no path" })).toBe(null);
		expect(parseSuggestion({ path: "  " })).toBe(null);
		expect(parseSuggestion("x.md")).toBe(null);
		expect(parseSuggestion(null)).toBe(null);
	});

	it("reasonText shows non-string reasons as text", () => {
		expect(reasonText("similar text (0.71)")).toBe("similar text (0.71)");
		expect(reasonText(null)).toBe("");
		expect(reasonText(["similar text (0.71)", "2 shared neighbours"])).toBe("similar text (0.71); 2 shared neighbours");
		expect(reasonText({ text: 0.71 })).toBe('{"text":0.71}');
		expect(reasonText(3)).toBe("3");
	});

	it("parseSuggestResponse keeps the good items and skips the bad ones", () => {
		const r = parseSuggestResponse({
			note: "A.md",
			suggestions: [{ path: "B.md", title: "B", score: 0.9, reason: "r" }, { nope: 1 }, { path: "C.md", title: "C", score: 0.1, reason: "s" }],
		});
		expect(r).toEqual({
			note: "A.md",
			suggestions: [
				{ path: "B.md", title: "B", score: 0.9, reason: "r" },
				{ path: "C.md", title: "C", score: 0.1, reason: "s" },
			],
		});
		expect(parseSuggestResponse({ note: "A.md" })).toBe(null);
		expect(parseSuggestResponse([])).toBe(null);
	});

	it("parseStatus needs a state string; learning may be null", () => {
		expect(parseStatus({ notes: 3 })).toBe(null);
		expect(parseStatus({ state: "indexing", learning: null, notes: "x" })).toEqual({ state: "indexing" });
		expect(parseStatus({ state: "learning", learning: { phase: "p1", progress: { step: 3 } } })).toEqual({
			state: "learning",
			learning: { phase: "p1", progress: null },
		});
		expect(parseStatus({ state: "idle", phases: ["a", 3, "b"] })).toEqual({ state: "idle", phases: ["a", "b"] });
	});

	it("parseLearnState reads state, or derives it from a boolean running", () => {
		expect(parseLearnState({ state: "learning", phase: "p1", progress: 0.2 })).toEqual({ state: "learning", phase: "p1", progress: 0.2 });
		expect(parseLearnState({ running: false, phase: null, progress: null, result: null, error: null })).toEqual({
			state: "idle",
			phase: null,
			progress: null,
		});
		expect(parseLearnState({ running: true, phase: "p2", progress: { step: 1 } })).toEqual({ state: "learning", phase: "p2", progress: null });
		expect(parseLearnState({ phase: "p1" })).toBe(null);
	});

	it("errorDetail reads {detail} and falls back to the text", () => {
		expect(errorDetail('{"detail":"nope"}')).toBe("nope");
		expect(errorDetail('{"error":"x"}')).toBe(null);
		expect(errorDetail("")).toBe(null);
		expect(errorDetail("Internal Server Error")).toBe("Internal Server Error");
	});
});
