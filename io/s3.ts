// A small S3 client (path-style, AWS Signature Version 4) for the restore command and the drill:
// list, download to a file, upload. Enough for Scaleway Object Storage and s3rver, no SDK needed.
import * as crypto from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import { pipeline } from "stream/promises";

export interface S3Options {
    /** `https://s3.fr-par.scw.cloud` (or `http://127.0.0.1:<port>` in tests) */
    readonly endpoint: string;
    readonly region: string;
    readonly bucket: string;
    readonly accessKey: string;
    readonly secretKey: string;
}

export interface S3Object {
    readonly key: string;
    readonly size: number;
    readonly lastModified: Date;
}

export class S3Error extends Error {
    constructor(
        message: string,
        readonly status: number,
        readonly code?: string,
    ) {
        super(message);
        this.name = "S3Error";
    }
}

const EMPTY_SHA256 = crypto.createHash("sha256").update("").digest("hex");

/** RFC 3986 encoding as SigV4 wants it (slashes kept in paths). */
function encode(value: string, keepSlash = false): string {
    const encoded = encodeURIComponent(value).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
    return keepSlash ? encoded.replace(/%2F/g, "/") : encoded;
}

const hmac = (key: crypto.BinaryLike, data: string) => crypto.createHmac("sha256", key).update(data).digest();

/** Headers that sign one request (exported for a test against a known vector). */
export function signRequest(
    options: Pick<S3Options, "region" | "accessKey" | "secretKey">,
    request: { method: string; host: string; path: string; query: Record<string, string>; payloadSha256: string; headers?: Record<string, string> },
    now: Date,
): Record<string, string> {
    const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
    const day = amzDate.slice(0, 8);
    const headers: Record<string, string> = {
        ...Object.fromEntries(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v.trim()])),
        host: request.host,
        "x-amz-content-sha256": request.payloadSha256,
        "x-amz-date": amzDate,
    };
    const names = Object.keys(headers).sort();
    const canonicalQuery = Object.keys(request.query)
        .sort()
        .map((k) => `${encode(k)}=${encode(request.query[k])}`)
        .join("&");
    const canonical = [request.method, request.path, canonicalQuery, ...names.map((n) => `${n}:${headers[n]}`), "", names.join(";"), request.payloadSha256].join("\n");
    const scope = `${day}/${options.region}/s3/aws4_request`;
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, crypto.createHash("sha256").update(canonical).digest("hex")].join("\n");
    const key = hmac(hmac(hmac(hmac("AWS4" + options.secretKey, day), options.region), "s3"), "aws4_request");
    const signature = crypto.createHmac("sha256", key).update(toSign).digest("hex");
    return {
        ...headers,
        authorization: `AWS4-HMAC-SHA256 Credential=${options.accessKey}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
    };
}

function xmlValues(xml: string, tag: string): string[] {
    const out: string[] = [];
    const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g");
    for (let m = re.exec(xml); m; m = re.exec(xml)) out.push(m[1]);
    return out;
}

function unescapeXml(s: string): string {
    return s.replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
        if (e === "lt") return "<";
        if (e === "gt") return ">";
        if (e === "quot") return '"';
        if (e === "apos") return "'";
        if (e === "amp") return "&";
        return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    });
}

export class S3Client {
    private readonly url: URL;

    constructor(private readonly options: S3Options) {
        this.url = new URL(options.endpoint);
        if (this.url.pathname !== "/" || this.url.search) throw new Error(`S3 endpoint ${options.endpoint} must be scheme://host[:port] only`);
    }

    /** `s3://bucket` as people write it, for messages. */
    describe(): string {
        return `s3://${this.options.bucket} at ${this.options.endpoint}`;
    }

    private request(method: string, key: string | undefined, query: Record<string, string>, body?: Buffer, extraHeaders: Record<string, string> = {}): Promise<http.IncomingMessage> {
        const path = `/${encode(this.options.bucket)}${key === undefined ? "" : "/" + encode(key, true)}`;
        const payloadSha256 = body ? crypto.createHash("sha256").update(body).digest("hex") : EMPTY_SHA256;
        const headers = signRequest(this.options, { method, host: this.url.host, path, query, payloadSha256, headers: extraHeaders }, new Date());
        const qs = Object.entries(query)
            .map(([k, v]) => `${encode(k)}=${encode(v)}`)
            .join("&");
        const transport = this.url.protocol === "https:" ? https : http;
        return new Promise((resolve, reject) => {
            const req = transport.request(
                {
                    method,
                    hostname: this.url.hostname,
                    port: this.url.port || undefined,
                    path: qs ? `${path}?${qs}` : path,
                    headers: body ? { ...headers, "content-length": String(body.length) } : headers,
                    timeout: 60_000,
                },
                resolve,
            );
            req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer from ${this.options.endpoint} within 60 s`)));
            req.on("error", reject);
            req.end(body);
        });
    }

    private async failure(res: http.IncomingMessage, what: string): Promise<S3Error> {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        const text = Buffer.concat(chunks).toString("utf8");
        const code = xmlValues(text, "Code")[0];
        const message = xmlValues(text, "Message")[0];
        const hint = res.statusCode === 403 ? " (check SCW_ACCESS_KEY/SCW_SECRET_KEY: the bucket policy lets only platform:backupAdministrators and the drill's own key, pulumi stack output --show-secrets backupDrillKey, read backups)" : "";
        return new S3Error(`${what}: HTTP ${res.statusCode}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}${hint}`, res.statusCode ?? 0, code);
    }

    /** Every object under `prefix` (all pages). */
    async list(prefix: string): Promise<S3Object[]> {
        const objects: S3Object[] = [];
        let token: string | undefined;
        do {
            const query: Record<string, string> = { "list-type": "2", prefix, "max-keys": "1000" };
            if (token) query["continuation-token"] = token;
            const res = await this.request("GET", undefined, query);
            if (res.statusCode !== 200) throw await this.failure(res, `listing ${this.describe()}/${prefix}`);
            const chunks: Buffer[] = [];
            for await (const c of res) chunks.push(c as Buffer);
            const xml = Buffer.concat(chunks).toString("utf8");
            for (const contents of xmlValues(xml, "Contents")) {
                objects.push({
                    key: unescapeXml(xmlValues(contents, "Key")[0] ?? ""),
                    size: Number(xmlValues(contents, "Size")[0] ?? "0"),
                    lastModified: new Date(xmlValues(contents, "LastModified")[0] ?? 0),
                });
            }
            token = xmlValues(xml, "IsTruncated")[0] === "true" ? unescapeXml(xmlValues(xml, "NextContinuationToken")[0] ?? "") : undefined;
        } while (token);
        return objects;
    }

    /** Streams an object into `file` (created 0600); returns its size. */
    async download(key: string, file: string): Promise<number> {
        const res = await this.request("GET", key, {});
        if (res.statusCode !== 200) throw await this.failure(res, `downloading ${key} from ${this.describe()}`);
        await pipeline(res, fs.createWriteStream(file, { mode: 0o600 }));
        const size = fs.statSync(file).size;
        const expected = Number(res.headers["content-length"]);
        if (Number.isFinite(expected) && expected !== size) throw new S3Error(`downloading ${key}: got ${size} of ${expected} bytes`, 0);
        return size;
    }

    /** A small object as text; refuses one larger than `maxBytes` (a signature, never a backup). */
    async getText(key: string, maxBytes: number): Promise<string> {
        const res = await this.request("GET", key, {});
        if (res.statusCode !== 200) throw await this.failure(res, `downloading ${key} from ${this.describe()}`);
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const c of res) {
            size += (c as Buffer).length;
            if (size > maxBytes) {
                res.destroy();
                throw new S3Error(`${key} is larger than ${maxBytes} bytes`, 0);
            }
            chunks.push(c as Buffer);
        }
        return Buffer.concat(chunks).toString("utf8");
    }

    async put(key: string, body: Buffer): Promise<void> {
        const md5 = crypto.createHash("md5").update(body).digest("base64");
        const res = await this.request("PUT", key, {}, body, { "content-md5": md5 });
        if (res.statusCode !== 200) throw await this.failure(res, `uploading ${key} to ${this.describe()}`);
        res.resume();
    }

    async createBucket(): Promise<void> {
        const res = await this.request("PUT", undefined, {});
        if (res.statusCode !== 200) throw await this.failure(res, `creating ${this.describe()}`);
        res.resume();
    }
}
