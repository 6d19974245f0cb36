import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The `obsidian` package ships types only; tests import a small hand-written stand-in.
export default defineConfig({
	resolve: {
		alias: {
			obsidian: fileURLToPath(new URL("./test/mocks/obsidian.ts", import.meta.url)),
		},
	},
	test: {
		environment: "happy-dom",
		include: ["test/**/*.test.ts"],
		setupFiles: ["test/setup.ts"],
	},
});
