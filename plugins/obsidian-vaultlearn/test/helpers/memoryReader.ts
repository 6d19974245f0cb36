import type { FileReader } from "../../src/discovery";

/** An in-memory vault adapter: path -> contents. Records reads. */
export function memoryReader(files: Record<string, string>, opts: { failRead?: boolean } = {}): FileReader & { reads: string[] } {
	const reads: string[] = [];
	return {
		reads,
		async exists(path: string) {
			return path in files;
		},
		async read(path: string) {
			reads.push(path);
			if (opts.failRead || !(path in files)) throw new Error(`ENOENT: ${path}`);
			return files[path];
		},
	};
}
