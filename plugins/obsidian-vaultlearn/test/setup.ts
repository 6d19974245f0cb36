import { beforeEach } from "vitest";
import { Notice } from "./mocks/obsidian";

beforeEach(() => {
	(Notice as unknown as { messages: string[] }).messages.length = 0;
});
