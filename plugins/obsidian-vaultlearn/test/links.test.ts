import { describe, expect, it } from "vitest";
import { buildLinkText, firstUnlinked, linkedTargets, linkpathFromPath } from "../src/links";
import { apiK, buildBaseUrl, endpointUrl, suggestUrl } from "../src/urls";

interface FakeFile {
	path: string;
}

describe("buildLinkText", () => {
	const files: Record<string, FakeFile> = { "folder/Other.md": { path: "folder/Other.md" } };
	const calls: [string, string][] = [];
	const deps = {
		getFile: (p: string) => files[p] ?? null,
		// Stands in for FileManager.generateMarkdownLink with "Markdown links, relative path" settings.
		generateMarkdownLink: (f: FakeFile, source: string) => {
			calls.push([f.path, source]);
			return `[Other](../folder/Other.md)`;
		},
	};

	it("lets Obsidian generate the link when the target is in the vault", () => {
		expect(buildLinkText(deps, "folder/Other.md", "notes/Plan.md")).toBe("[Other](../folder/Other.md)");
		expect(calls).toEqual([["folder/Other.md", "notes/Plan.md"]]);
	});

	it("falls back to a wikilink to the path without .md for files the vault does not have", () => {
		expect(buildLinkText(deps, "gone/Missing note.md", "notes/Plan.md")).toBe("[[gone/Missing note]]");
	});

	it("linkpathFromPath strips only .md", () => {
		expect(linkpathFromPath("a/B.md")).toBe("a/B");
		expect(linkpathFromPath("a/B.canvas")).toBe("a/B.canvas");
	});
});

describe("linked targets", () => {
	it("reads MetadataCache.resolvedLinks for the source note", () => {
		const resolved = { "Plan.md": { "A.md": 2, "B.md": 1 }, "Other.md": { "C.md": 1 } };
		expect([...linkedTargets(resolved, "Plan.md")].sort()).toEqual(["A.md", "B.md"]);
		expect(linkedTargets(resolved, "None.md").size).toBe(0);
		expect(linkedTargets(undefined, "Plan.md").size).toBe(0);
	});

	it("firstUnlinked skips rows already linked", () => {
		expect(firstUnlinked([{ linked: true, p: 1 }, { linked: false, p: 2 }])).toEqual({ linked: false, p: 2 });
		expect(firstUnlinked([{ linked: true }])).toBe(null);
	});
});

describe("URL building", () => {
	it("buildBaseUrl brackets IPv6", () => {
		expect(buildBaseUrl("127.0.0.1", 8765)).toBe("http://127.0.0.1:8765");
		expect(buildBaseUrl("::1", 8765)).toBe("http://[::1]:8765");
		expect(buildBaseUrl("[::1]", 8765)).toBe("http://[::1]:8765");
	});

	it("suggestUrl percent-encodes the whole path", () => {
		expect(suggestUrl("http://127.0.0.1:8765", "My Notes/Café ü.md", 10)).toBe(
			"http://127.0.0.1:8765/suggest?note=My%20Notes%2FCaf%C3%A9%20%C3%BC.md&k=10",
		);
		expect(suggestUrl("http://h:1", "a+b&c=d?#.md", 3)).toBe("http://h:1/suggest?note=a%2Bb%26c%3Dd%3F%23.md&k=3");
	});

	it("apiK keeps k within 1..100", () => {
		expect(apiK(0)).toBe(1);
		expect(apiK(101)).toBe(100);
		expect(apiK(7.4)).toBe(7);
		expect(apiK(NaN)).toBe(10);
	});

	it("endpointUrl joins without doubling slashes", () => {
		expect(endpointUrl("http://127.0.0.1:8765", "/status")).toBe("http://127.0.0.1:8765/status");
	});
});
