// A real S3-compatible server (s3rver) on a free loopback port, with one bucket, for tests and benches.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { S3Client } from "../../io/s3";
import { freeLoopbackPort } from "./postgres";

// s3rver ships no types.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const S3rver = require("s3rver");

export interface TestS3 {
    readonly endpoint: string;
    readonly region: string;
    readonly bucket: string;
    /** s3rver's built-in account. */
    readonly accessKey: string;
    readonly secretKey: string;
    readonly directory: string;
    client(bucket?: string): S3Client;
    stop(): Promise<void>;
}

export async function startS3(bucket = "platform-backups-test"): Promise<TestS3> {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "platform-s3-"));
    const port = await freeLoopbackPort();
    const server = new S3rver({ address: "127.0.0.1", port, directory, silent: true, configureBuckets: [{ name: bucket }], vhostBuckets: false });
    await server.run();
    const endpoint = `http://127.0.0.1:${port}`;
    const base = { endpoint, region: "us-east-1", accessKey: "S3RVER", secretKey: "S3RVER" };
    return {
        ...base,
        bucket,
        directory,
        client: (b = bucket) => new S3Client({ ...base, bucket: b }),
        stop: async () => {
            await server.close();
            fs.rmSync(directory, { recursive: true, force: true });
        },
    };
}
