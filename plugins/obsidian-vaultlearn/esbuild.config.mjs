// Bundles src/main.ts into main.js the way Obsidian loads plugins: one CommonJS file,
// with the modules Obsidian provides at runtime left external.
// `node esbuild.config.mjs production` builds once; without the argument it watches.
import process from "node:process";
import { builtinModules } from "node:module";
import esbuild from "esbuild";

const prod = process.argv[2] === "production";

const options = {
	banner: { js: "/* vaultlearn-links: bundled by esbuild from src/ — edit the sources, not this file. */" },
	entryPoints: ["src/main.ts"],
	outfile: "main.js",
	bundle: true,
	external: [
		"obsidian",
		"electron",
		"@codemirror/*",
		"@lezer/*",
		...builtinModules,
		...builtinModules.map((m) => `node:${m}`),
	],
	format: "cjs",
	platform: "browser",
	target: "es2018",
	logLevel: "info",
	sourcemap: prod ? false : "inline",
	treeShaking: true,
	minify: false,
};

if (prod) {
	await esbuild.build(options);
} else {
	const ctx = await esbuild.context(options);
	await ctx.watch();
}
