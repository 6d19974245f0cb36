// requestUrl() ignores abort signals, so a request to a hung daemon would never settle.
// withTimeout() gives up waiting after `ms`; the request itself is left to finish on its own.

export class TimeoutError extends Error {
	constructor(readonly ms: number) {
		super(`no answer within ${ms} ms`);
		this.name = "TimeoutError";
	}
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
	return new Promise<T>((resolve, reject) => {
		const timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
		promise.then(
			(value) => {
				clearTimeout(timer);
				resolve(value);
			},
			(err: unknown) => {
				clearTimeout(timer);
				reject(err);
			},
		);
	});
}
