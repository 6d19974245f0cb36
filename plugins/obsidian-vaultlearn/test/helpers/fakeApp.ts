// A fake Obsidian App with just the members the plugin uses, recording calls.
import { vi } from "vitest";
import { FileSystemAdapter, MarkdownView, TFile, WorkspaceLeaf } from "../mocks/obsidian";

export interface FakeEditor {
	text: string;
	cursor: number;
	replaceSelection: ReturnType<typeof vi.fn>;
	focus: ReturnType<typeof vi.fn>;
}

/** An editor over a string, with the cursor at `cursor`. */
export function fakeEditor(text = "", cursor = text.length): FakeEditor {
	const ed: FakeEditor = {
		text,
		cursor,
		replaceSelection: vi.fn((s: string) => {
			ed.text = ed.text.slice(0, ed.cursor) + s + ed.text.slice(ed.cursor);
			ed.cursor += s.length;
		}),
		focus: vi.fn(),
	};
	return ed;
}

export function fakeApp(paths: string[] = []) {
	const files = new Map(paths.map((p) => [p, new TFile(p)]));
	const handlers: Record<string, ((...args: any[]) => unknown)[]> = {};
	const on = (name: string, cb: (...args: any[]) => unknown) => {
		(handlers[name] ??= []).push(cb);
		return { name };
	};
	const layoutReady: (() => unknown)[] = [];
	const leaves: WorkspaceLeaf[] = [];
	let activeFile: TFile | null = null;
	let activeMarkdown: MarkdownView | null = null;

	const app: any = {
		vault: {
			adapter: Object.assign(new FileSystemAdapter("/home/me/vault"), {
				exists: vi.fn(async () => false),
				read: vi.fn(async () => ""),
			}),
			getName: () => "vault",
			getAbstractFileByPath: (p: string) => files.get(p) ?? null,
			cachedRead: vi.fn(async () => "note text"),
			on: vi.fn(on),
		},
		fileManager: {
			// Stands in for the user's link settings: wikilinks, shortest path.
			generateMarkdownLink: vi.fn((file: TFile) => `[[${file.basename}]]`),
		},
		metadataCache: { resolvedLinks: {} as Record<string, Record<string, number>> },
		workspace: {
			on: vi.fn(on),
			onLayoutReady: vi.fn((cb: () => unknown) => layoutReady.push(cb)),
			openLinkText: vi.fn(async () => undefined),
			getActiveFile: () => activeFile,
			getActiveViewOfType: (type: unknown) => (type === MarkdownView ? activeMarkdown : null),
			getLeavesOfType: (type: string) =>
				leaves.filter((l) => (type === "markdown" ? l.view instanceof MarkdownView : (l.view as any)?.getViewType?.() === type)),
			getMostRecentLeaf: () => leaves.find((l) => l.view === activeMarkdown) ?? null,
			getRightLeaf: () => {
				const leaf = new WorkspaceLeaf(app);
				(leaf as any).setViewState = vi.fn();
				leaves.push(leaf);
				return leaf;
			},
			revealLeaf: vi.fn(async () => undefined),
		},
	};

	return {
		app,
		files,
		handlers,
		leaves,
		fire(name: string, ...args: unknown[]) {
			for (const cb of handlers[name] ?? []) cb(...args);
		},
		layoutReady() {
			layoutReady.forEach((cb) => cb());
		},
		/** Opens a Markdown view for path and makes it active. */
		openMarkdown(path: string, editor: FakeEditor, mode: "source" | "preview" = "source") {
			const leaf = new WorkspaceLeaf(app);
			const view = new MarkdownView(leaf);
			view.file = files.get(path) ?? new TFile(path);
			view.editor = editor;
			view.mode = mode;
			leaf.view = view;
			leaves.push(leaf);
			activeFile = view.file;
			activeMarkdown = view;
			return leaf;
		},
		/** Focus moves to a side pane: the last file stays "active file", no Markdown view is active. */
		focusSidebar() {
			activeMarkdown = null;
		},
		addLeaf(view: unknown) {
			const leaf = new WorkspaceLeaf(app);
			leaf.view = view;
			leaves.push(leaf);
			return leaf;
		},
	};
}
