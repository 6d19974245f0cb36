// Link text for a suggestion. Pure over a small interface, so tests need no Obsidian.

/** The parts of Obsidian's App that building a link needs. */
export interface LinkDeps<F> {
	/** The vault file at a path, or null (Vault.getAbstractFileByPath + instanceof TFile). */
	getFile(path: string): F | null;
	/** FileManager.generateMarkdownLink: follows the user's wikilink / Markdown and path-format settings. */
	generateMarkdownLink(file: F, sourcePath: string): string;
}

/** "folder/Other.md" -> "folder/Other"; other extensions are kept, as Obsidian does. */
export function linkpathFromPath(path: string): string {
	return path.replace(/\.md$/i, "");
}

/**
 * The text to insert for a link from sourcePath to targetPath. When the target is a file in
 * the vault, Obsidian generates it (so it honours "Use [[Wikilinks]]" and "New link format");
 * when the daemon names a file the vault does not have (yet), a plain wikilink to its path.
 */
export function buildLinkText<F>(deps: LinkDeps<F>, targetPath: string, sourcePath: string): string {
	const file = deps.getFile(targetPath);
	if (file !== null) return deps.generateMarkdownLink(file, sourcePath);
	return `[[${linkpathFromPath(targetPath)}]]`;
}

/** Paths the source note already links to, from MetadataCache.resolvedLinks. */
export function linkedTargets(resolvedLinks: Record<string, Record<string, number>> | undefined, sourcePath: string): Set<string> {
	return new Set(Object.keys(resolvedLinks?.[sourcePath] ?? {}));
}

/** The first row that is not linked yet, or null. */
export function firstUnlinked<R extends { linked: boolean }>(rows: R[]): R | null {
	return rows.find((r) => !r.linked) ?? null;
}
