import { beforeEach } from "vitest";
import { Notice } from "obsidian";

beforeEach(() => {
	(Notice as unknown as { messages: string[] }).messages.length = 0;
});
