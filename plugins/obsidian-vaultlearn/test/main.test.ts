import { afterEach, describe, expect, it, vi } from "vitest";
import { Notice } from "./mocks/obsidian";
import VaultlearnPlugin from "../src/main";
import type { ViewState } from "../src/state";
import { deriveState } from "../src/state";
import { SuggestedLinksView, VIEW_TYPE_SUGGESTIONS } from "../src/view";
import { fakeApp, fakeEditor } from "./helpers/fakeApp";

const NOTE = "Projects/Plan.md";

function rowsState(note: string, paths: string[], linked: string[] = []): ViewState {
	return deriveState({
		note,
		vaultPath: "/v",
		suggest: { ok: true, value: { note, suggestions: paths.map((p) => ({ path: p, title: p, score: 0.5, reason: "" })) } },
		status: { ok: true, value: { state: "idle" } },
		linked: new Set(linked),
	});
}

async function loaded(data: unknown = null) {
	const env = fakeApp([NOTE, "Other.md", "Third.md"]);
	const plugin = new VaultlearnPlugin(env.app, { id: "vaultlearn-links" } as any);
	(plugin as any).data = data;
	await plugin.onload();
	const load = vi.fn(async (note: string) => rowsState(note, ["Other.md", "Third.md"]));
	(plugin as any).service = { load, describeConnection: vi.fn() };
	return { env, plugin, load, mock: plugin as any };
}

/** Opens the pane the way Obsidian does: the registered factory builds the view for a leaf. */
async function openPane(env: ReturnType<typeof fakeApp>, mock: any): Promise<SuggestedLinksView> {
	const leaf = env.addLeaf(null);
	const view = mock.viewFactories[VIEW_TYPE_SUGGESTIONS](leaf) as SuggestedLinksView;
	leaf.view = view;
	await view.onOpen();
	return view;
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("VaultlearnPlugin", () => {
	afterEach(() => {
		vi.useRealTimers();
	});

	it("registers the view, a ribbon icon, three commands and the settings tab", async () => {
		const { mock } = await loaded();
		expect(Object.keys(mock.viewFactories)).toEqual([VIEW_TYPE_SUGGESTIONS]);
		expect(mock.ribbon.map((r: any) => [r.icon, r.title])).toEqual([["link", "Open suggested links"]]);
		expect(mock.commands.map((c: any) => [c.id, c.name])).toEqual([
			["open-suggested-links", "Open suggested links"],
			["insert-top-suggestion", "Insert top suggestion as link"],
			["refresh-suggestions", "Refresh suggestions"],
		]);
		expect(mock.settingTabs).toHaveLength(1);
	});

	it("registers its event handlers only once the layout is ready, through registerEvent", async () => {
		const { env, mock } = await loaded();
		expect(env.app.workspace.on).not.toHaveBeenCalled();
		expect(env.app.vault.on).not.toHaveBeenCalled();
		env.layoutReady();
		expect(env.app.workspace.on.mock.calls.map((c: any[]) => c[0])).toEqual(["active-leaf-change", "file-open"]);
		expect(env.app.vault.on.mock.calls.map((c: any[]) => c[0])).toEqual(["modify", "rename", "delete"]);
		expect(mock.events.map((e: any) => e.name)).toEqual(["active-leaf-change", "file-open", "modify", "rename", "delete"]);
	});

	it("loads saved settings through normalizeSettings", async () => {
		const { plugin } = await loaded({ k: 500, port: "8765", host: "10.0.0.1", autoRefresh: false });
		expect(plugin.settings).toEqual({ host: "127.0.0.1", port: 8765, token: "", k: 50, autoRefresh: false });
	});

	it("the pane follows the active note and keeps it while the pane itself has focus", async () => {
		const { env, mock, load } = await loaded();
		env.layoutReady();
		const view = await openPane(env, mock);
		const leaf = env.openMarkdown(NOTE, fakeEditor());
		env.fire("active-leaf-change", leaf);
		await flush();
		expect(view.currentNote).toBe(NOTE);
		expect(load).toHaveBeenLastCalledWith(NOTE);

		env.focusSidebar();
		env.fire("active-leaf-change", env.leaves.find((l) => l.view === view));
		await flush();
		expect(view.currentNote).toBe(NOTE);
		expect(load).toHaveBeenCalledTimes(1);

		env.openMarkdown("Other.md", fakeEditor());
		env.fire("file-open", env.files.get("Other.md"));
		await flush();
		expect(view.currentNote).toBe("Other.md");
	});

	it("refreshes once, 2 s after the last save of the shown note; other files are ignored", async () => {
		vi.useFakeTimers();
		const { env, mock, load } = await loaded();
		env.layoutReady();
		const view = await openPane(env, mock);
		env.fire("active-leaf-change", env.openMarkdown(NOTE, fakeEditor()));
		await vi.advanceTimersByTimeAsync(0);
		expect(view.currentNote).toBe(NOTE);
		load.mockClear();

		env.fire("modify", env.files.get("Third.md"));
		env.fire("modify", env.files.get(NOTE));
		await vi.advanceTimersByTimeAsync(1000);
		env.fire("modify", env.files.get(NOTE));
		await vi.advanceTimersByTimeAsync(1999);
		expect(load).not.toHaveBeenCalled();
		await vi.advanceTimersByTimeAsync(1);
		expect(load).toHaveBeenCalledTimes(1);
		expect(load).toHaveBeenCalledWith(NOTE);
	});

	it("with auto-refresh off the pane stays on its note until refreshed by hand", async () => {
		const { env, mock, load } = await loaded({ autoRefresh: false });
		env.layoutReady();
		const view = await openPane(env, mock);
		env.fire("active-leaf-change", env.openMarkdown(NOTE, fakeEditor()));
		await flush();
		expect(view.currentNote).toBe(NOTE); // an empty pane still picks up the first note
		env.fire("active-leaf-change", env.openMarkdown("Other.md", fakeEditor()));
		await flush();
		expect(view.currentNote).toBe(NOTE);
		mock.commands.find((c: any) => c.id === "refresh-suggestions").callback();
		await flush();
		expect(view.currentNote).toBe("Other.md");
		expect(load).toHaveBeenLastCalledWith("Other.md");
	});

	it("findEditor returns the note's editor in editing mode, also after focus moved to the pane", async () => {
		const { env, plugin } = await loaded();
		env.layoutReady();
		const editor = fakeEditor();
		const leaf = env.openMarkdown(NOTE, editor);
		env.fire("active-leaf-change", leaf);
		expect(plugin.findEditor(NOTE)).toBe(editor);
		env.focusSidebar();
		expect(plugin.findEditor(NOTE)).toBe(editor);
		expect(plugin.findEditor("Other.md")).toBe(null);
	});

	it("findEditor ignores a note open in reading mode", async () => {
		const { env, plugin } = await loaded();
		env.openMarkdown(NOTE, fakeEditor(), "preview");
		expect(plugin.findEditor(NOTE)).toBe(null);
	});

	it("'Insert top suggestion as link' inserts the first suggestion not linked yet", async () => {
		const { mock, load } = await loaded();
		load.mockImplementation(async (note: string) => rowsState(note, ["Other.md", "Third.md"], ["Other.md"]));
		const editor = fakeEditor("x ");
		await mock.commands.find((c: any) => c.id === "insert-top-suggestion").editorCallback(editor, { file: mock.app.vault.getAbstractFileByPath(NOTE) });
		await flush();
		expect(load).toHaveBeenCalledWith(NOTE);
		expect(editor.replaceSelection).toHaveBeenCalledWith("[[Third]]");
		expect(editor.text).toBe("x [[Third]]");
	});

	it("'Insert top suggestion as link' explains why when there is nothing to insert", async () => {
		const { mock, load } = await loaded();
		load.mockImplementation(async () =>
			deriveState({ note: NOTE, vaultPath: "/v", discovery: { ok: false, reason: "not-running", message: "" } }),
		);
		const editor = fakeEditor();
		await mock.commands.find((c: any) => c.id === "insert-top-suggestion").editorCallback(editor, { file: mock.app.vault.getAbstractFileByPath(NOTE) });
		await flush();
		expect(editor.replaceSelection).not.toHaveBeenCalled();
		expect((Notice as any).messages).toEqual(["vaultlearn: daemon not running — start `vaultlearn watch /v`"]);
	});

	it("'Open suggested links' creates the pane in the right sidebar and reveals it", async () => {
		const { env, mock } = await loaded();
		await mock.commands.find((c: any) => c.id === "open-suggested-links").callback();
		await flush();
		const leaf = env.leaves[env.leaves.length - 1] as any;
		expect(leaf.setViewState).toHaveBeenCalledWith({ type: VIEW_TYPE_SUGGESTIONS, active: true });
		expect(env.app.workspace.revealLeaf).toHaveBeenCalledWith(leaf);
	});

	it("saves settings with saveData", async () => {
		const { plugin, mock } = await loaded();
		plugin.settings.k = 7;
		await plugin.saveSettings();
		expect(mock.data).toEqual({ host: "127.0.0.1", port: null, token: "", k: 7, autoRefresh: true });
	});
});
