import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Notice, WorkspaceLeaf } from "./mocks/obsidian";
import type { ViewState } from "../src/state";
import { deriveState } from "../src/state";
import { DEFAULT_SETTINGS } from "../src/settingsModel";
import { insertLinkAtCursor, linkTextFor, SuggestedLinksView, VIEW_TYPE_SUGGESTIONS } from "../src/view";
import { fakeApp, fakeEditor } from "./helpers/fakeApp";

const NOTE = "Projects/Plan.md";

function okState(note: string, paths: string[], status: "idle" | "learning" = "idle"): ViewState {
	return deriveState({
		note,
		vaultPath: "/v",
		suggest: {
			ok: true,
			value: { note, suggestions: paths.map((p) => ({ path: p, title: p.replace(/^.*\//, "").replace(/\.md$/, ""), score: 0.5, reason: "r" })) },
		},
		status: { ok: true, value: { state: status } },
	});
}

function setup(opts: { autoRefresh?: boolean; load?: (note: string) => Promise<ViewState>; active?: string | null } = {}) {
	const env = fakeApp([NOTE, "folder/Other.md", "Second.md"]);
	const editor = fakeEditor("Intro: ");
	const load = vi.fn(opts.load ?? (async (note: string) => okState(note, ["folder/Other.md", "Second.md"])));
	const host = {
		settings: { ...DEFAULT_SETTINGS, autoRefresh: opts.autoRefresh ?? true },
		service: { load },
		findEditor: vi.fn((note: string) => (note === NOTE ? (editor as any) : null)),
		activeNotePath: () => opts.active ?? null,
	};
	const view = new SuggestedLinksView(new WorkspaceLeaf(env.app) as any, host);
	return { env, editor, host, load, view };
}

const notices = () => (Notice as unknown as { messages: string[] }).messages;

describe("SuggestedLinksView", () => {
	afterEach(() => {
		vi.useRealTimers();
	});

	it("identifies itself as the 'Suggested links' pane", () => {
		const { view } = setup();
		expect(view.getViewType()).toBe(VIEW_TYPE_SUGGESTIONS);
		expect(view.getDisplayText()).toBe("Suggested links");
		expect(view.getIcon()).toBe("link");
	});

	it("on open without a note it asks for one and adds a refresh action", async () => {
		const { view } = setup();
		await view.onOpen();
		expect(view.contentEl.textContent).toBe("Open a Markdown note to see suggested links.");
		expect((view as any).actions.map((a: any) => a.title)).toEqual(["Refresh suggestions"]);
	});

	it("on open it picks up the note that is already active", async () => {
		const { view, load } = setup({ active: NOTE });
		await view.onOpen();
		await vi.waitFor(() => expect(view.contentEl.querySelectorAll("li")).toHaveLength(2));
		expect(view.currentNote).toBe(NOTE);
		expect(load).toHaveBeenCalledWith(NOTE);
	});

	it("setNote loads and renders the suggestions for that note", async () => {
		const { view, load } = setup();
		await view.onOpen();
		await view.setNote(NOTE);
		expect(load).toHaveBeenCalledWith(NOTE);
		const titles = [...view.contentEl.querySelectorAll(".vaultlearn-title")].map((e) => e.textContent);
		expect(titles).toEqual(["Other", "Second"]);
		await view.setNote(NOTE); // same note: no second request
		expect(load).toHaveBeenCalledTimes(1);
	});

	it("the row button inserts the link at the cursor via editor.replaceSelection", async () => {
		const { view, editor, env } = setup();
		await view.onOpen();
		await view.setNote(NOTE);
		const button = view.contentEl.querySelector('li[data-path="folder/Other.md"] button') as HTMLButtonElement;
		button.click();
		expect(env.app.fileManager.generateMarkdownLink).toHaveBeenCalledWith(env.files.get("folder/Other.md"), NOTE);
		expect(editor.replaceSelection).toHaveBeenCalledTimes(1);
		expect(editor.replaceSelection).toHaveBeenCalledWith("[[Other]]");
		expect(editor.text).toBe("Intro: [[Other]]");
		expect(editor.focus).toHaveBeenCalled();
		// The row now shows as linked, until the daemon catches up.
		const after = view.contentEl.querySelector('li[data-path="folder/Other.md"] button') as HTMLButtonElement;
		expect(after.disabled).toBe(true);
	});

	it("inserting without an editor for the note shows a notice and changes nothing", async () => {
		const { view, editor, host } = setup();
		host.findEditor.mockReturnValue(null);
		await view.onOpen();
		await view.setNote(NOTE);
		expect(view.insert(view.currentState!.rows[0])).toBe(false);
		expect(editor.replaceSelection).not.toHaveBeenCalled();
		expect(notices()).toEqual(["Open the note in editing mode to insert links."]);
	});

	it("clicking a title opens the note with openLinkText, in a new tab with Ctrl/Cmd", async () => {
		const { view, env } = setup();
		await view.onOpen();
		await view.setNote(NOTE);
		const title = view.contentEl.querySelector(".vaultlearn-title") as HTMLElement;
		title.click();
		title.dispatchEvent(new MouseEvent("click", { ctrlKey: true, bubbles: true }));
		expect(env.app.workspace.openLinkText.mock.calls).toEqual([
			["folder/Other.md", NOTE, false],
			["folder/Other.md", NOTE, "tab"],
		]);
	});

	it("drops a slow answer for a note the user has already left", async () => {
		let release!: (s: ViewState) => void;
		const { view } = setup({
			load: (note) => (note === "Slow.md" ? new Promise((r) => (release = r)) : Promise.resolve(okState(note, ["Second.md"]))),
		});
		await view.onOpen();
		const slow = view.setNote("Slow.md");
		await view.setNote(NOTE);
		release(okState("Slow.md", ["folder/Other.md"]));
		await slow;
		expect(view.currentNote).toBe(NOTE);
		expect([...view.contentEl.querySelectorAll("li")].map((li) => (li as HTMLElement).dataset.path)).toEqual(["Second.md"]);
	});

	it("shows the loading state while the first request runs", async () => {
		let release!: (s: ViewState) => void;
		const { view } = setup({ load: () => new Promise((r) => (release = r)) });
		await view.onOpen();
		const pending = view.setNote(NOTE);
		expect(view.contentEl.querySelector(".vaultlearn-message")!.textContent).toBe("Loading suggestions…");
		release(okState(NOTE, []));
		await pending;
		expect(view.contentEl.querySelector(".vaultlearn-message")!.textContent).toBe("no suggestions");
	});

	it("a failing service call shows an error instead of leaving the pane loading", async () => {
		const { view } = setup({ load: async () => Promise.reject(new Error("adapter exploded")) });
		await view.onOpen();
		await view.setNote(NOTE);
		expect(view.currentState).toMatchObject({ code: "error", message: "could not load suggestions", detail: "Error: adapter exploded" });
	});

	describe("polling", () => {
		beforeEach(() => {
			vi.useFakeTimers();
		});

		it("checks again after 5 s while the daemon is learning, and stops once idle", async () => {
			let calls = 0;
			const { view, load } = setup({ load: async (note) => okState(note, ["Second.md"], ++calls < 3 ? "learning" : "idle") });
			await view.onOpen();
			await view.setNote(NOTE);
			expect(load).toHaveBeenCalledTimes(1);
			await vi.advanceTimersByTimeAsync(5000);
			expect(load).toHaveBeenCalledTimes(2);
			await vi.advanceTimersByTimeAsync(5000);
			expect(load).toHaveBeenCalledTimes(3);
			await vi.advanceTimersByTimeAsync(60000);
			expect(load).toHaveBeenCalledTimes(3);
		});

		it("does not poll when auto-refresh is off, and stops when the pane closes", async () => {
			const off = setup({ autoRefresh: false, load: async (note) => okState(note, ["Second.md"], "learning") });
			await off.view.onOpen();
			await off.view.setNote(NOTE);
			await vi.advanceTimersByTimeAsync(20000);
			expect(off.load).toHaveBeenCalledTimes(1);

			const on = setup({ load: async (note) => okState(note, ["Second.md"], "learning") });
			await on.view.onOpen();
			await on.view.setNote(NOTE);
			await on.view.onClose();
			await vi.advanceTimersByTimeAsync(20000);
			expect(on.load).toHaveBeenCalledTimes(1);
		});
	});
});

describe("link insertion helpers", () => {
	it("linkTextFor uses generateMarkdownLink for vault files and a wikilink otherwise", () => {
		const env = fakeApp(["folder/Other.md"]);
		expect(linkTextFor(env.app, "folder/Other.md", NOTE)).toBe("[[Other]]");
		expect(linkTextFor(env.app, "gone/Missing.md", NOTE)).toBe("[[gone/Missing]]");
		expect(env.app.fileManager.generateMarkdownLink).toHaveBeenCalledTimes(1);
	});

	it("follows a Markdown-link format when the user's settings produce one", () => {
		const env = fakeApp(["folder/Other note.md"]);
		env.app.fileManager.generateMarkdownLink = vi.fn(() => "[Other note](../folder/Other%20note.md)");
		const editor = fakeEditor("See ", 4);
		expect(insertLinkAtCursor(env.app, editor as any, "folder/Other note.md", "Projects/Plan.md")).toBe(
			"[Other note](../folder/Other%20note.md)",
		);
		expect(editor.replaceSelection).toHaveBeenCalledWith("[Other note](../folder/Other%20note.md)");
		expect(editor.text).toBe("See [Other note](../folder/Other%20note.md)");
	});
});
