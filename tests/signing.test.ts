// Signed backups, the pure part (render/signing.ts): key formats, the signed statement, the strict
// signature parser and every reason verifyBackup refuses a listed backup. The real host script and
// real stores are in tests/backup.real.test.ts; the key command on the real Pulumi CLI below.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { backupKey, parseBackupKey } from "../render/backup";
import {
    BackupCandidate,
    CLOCK_SKEW_MS,
    MAX_UPLOAD_DELAY_MS,
    SIGNATURE_FORMAT,
    checkSignedBytes,
    generateSigningKey,
    isSigningPublicKey,
    isSigningSecretKey,
    parseSignatureFile,
    parseTrustedKeys,
    signBackup,
    signatureStatement,
    signingKeyPem,
    signingPublicKey,
    verifyBackup,
} from "../render/signing";
import { TEST_SIGNING_KEYS } from "../config/testValues";
import { nextPins, parseSigningKeyArgs, runSigningKey } from "../commands/backup-signing-key";
import { pinnedSigningKeys } from "../io/backupTrust";
import { DirectoryBackupStore, S3BackupStore } from "../io/restore";
import { S3Client } from "../io/s3";

const HOST = TEST_SIGNING_KEYS.fixture;
const TRUST = [{ publicKey: HOST.publicKey }];
const NOW = new Date("2026-12-04T03:40:00Z");

function candidate(o: { at?: Date; storedAfterMs?: number; secretKey?: string | null; object?: string; bytes?: number; sigText?: string; sigStoredAfterMs?: number } = {}): BackupCandidate {
    const at = o.at ?? new Date("2026-12-04T03:30:00Z");
    const key = backupKey("app1", at);
    const ref = parseBackupKey(key, o.bytes ?? 1000, new Date(at.getTime() + (o.storedAfterMs ?? 40_000)))!;
    const text = o.sigText ?? (o.secretKey === null ? undefined : signBackup(o.secretKey ?? HOST.secretKey, { object: o.object ?? key, bytes: 1000, sha256: "ab".repeat(32) }));
    return { ref, signature: text === undefined ? undefined : { text, lastModified: new Date(at.getTime() + (o.sigStoredAfterMs ?? o.storedAfterMs ?? 41_000)) } };
}

describe("backup signing (render/signing.ts)", () => {
    it("key formats: the published test keys are what they say; a generated pair matches; the PEM is what openssl reads", () => {
        for (const k of Object.values(TEST_SIGNING_KEYS)) assert.strictEqual(signingPublicKey(k.secretKey), k.publicKey);
        const pair = generateSigningKey();
        assert.ok(isSigningSecretKey(pair.secretKey) && isSigningPublicKey(pair.publicKey));
        assert.strictEqual(signingPublicKey(pair.secretKey), pair.publicKey);
        for (const bad of ["", "ed25519:", "ed25519:" + "A".repeat(44), "ed25519-secret:" + "A".repeat(43) + "=\n", pair.publicKey.replace("ed25519:", "ssh-ed25519 ")]) {
            assert.ok(!isSigningPublicKey(bad) && !isSigningSecretKey(bad), JSON.stringify(bad));
        }
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-signing-"));
        try {
            fs.writeFileSync(path.join(dir, "k.pem"), signingKeyPem(HOST.secretKey), { mode: 0o600 });
            const der = spawnSync("openssl", ["pkey", "-in", path.join(dir, "k.pem"), "-pubout", "-outform", "DER"]);
            if (der.status === 0) assert.strictEqual(`ed25519:${der.stdout.subarray(-32).toString("base64")}`, HOST.publicKey, "openssl derives the same public key");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("keys are canonical base64: a re-spelled published key (the last character's ignored bits) is not a key", () => {
        for (const k of [...Object.values(TEST_SIGNING_KEYS).map((t) => t.secretKey), `ed25519-secret:${"A".repeat(43)}=`]) {
            assert.ok(isSigningSecretKey(k), k);
            const last = k[k.length - 2];
            const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            const respelled = k.slice(0, -2) + alphabet[alphabet.indexOf(last) + 1] + "=";
            assert.strictEqual(Buffer.from(respelled.slice(15), "base64").equals(Buffer.from(k.slice(15), "base64")), true, "the same 32 bytes");
            assert.ok(!isSigningSecretKey(respelled), respelled);
            assert.ok(!isSigningPublicKey(respelled.replace("ed25519-secret:", "ed25519:")));
        }
    });

    it("the statement the host script prints is the library's, line for line", () => {
        const script = fs.readFileSync(path.join(__dirname, "..", "hostScripts", "backup.sh"), "utf8");
        assert.strictEqual(/^SIGNATURE_FORMAT="(.*)"$/m.exec(script)![1], SIGNATURE_FORMAT);
        const printf = /printf '(%s\\nobject %s\\nbytes %s\\nsha256 %s\\n)' "\$SIGNATURE_FORMAT" "\$object" "\$enc_bytes" "\$enc_sha"/.exec(script);
        assert.ok(printf, "the script prints format, object, bytes, sha256");
        const s = { object: "app1/app1-20261204T033000Z.tar.age", bytes: 12, sha256: "cd".repeat(32) };
        const shell = spawnSync("sh", ["-c", `printf '${printf![1]}' "$1" "$2" "$3" "$4"`, "sh", SIGNATURE_FORMAT, s.object, String(s.bytes), s.sha256], { encoding: "utf8" });
        assert.strictEqual(shell.stdout, signatureStatement(s));
    });

    it("a genuine backup signed by a pinned key is trusted", () => {
        const v = verifyBackup(candidate(), TRUST, NOW);
        assert.ok(v.trusted, JSON.stringify(v));
    });

    it("every forgery and accident is refused, saying why", () => {
        const other = generateSigningKey();
        const cases: [BackupCandidate, RegExp, Date?][] = [
            [candidate({ secretKey: null }), /it is not signed/],
            [candidate({ secretKey: other.secretKey }), /which is not pinned/],
            [candidate({ at: new Date("2099-01-01T00:00:00Z") }), /in the future/, NOW],
            [candidate({ storedAfterMs: -CLOCK_SKEW_MS - 1000 }), /before the time its name claims/],
            [candidate({ storedAfterMs: MAX_UPLOAD_DELAY_MS + 1000 }), /after the time its name claims/],
            [candidate({ sigStoredAfterMs: MAX_UPLOAD_DELAY_MS + 1000, storedAfterMs: 1000 }), /its signature was stored at/],
            [candidate({ object: "app1/app1-20261101T033000Z.tar.age" }), /signature is of another object/],
            [candidate({ bytes: 999 }), /it is 999 bytes, but its signature is of 1000 bytes/],
            [candidate({ sigText: "not json" }), /unreadable: the signature is not JSON/],
            [candidate({ sigText: JSON.stringify({ format: SIGNATURE_FORMAT }) }), /unreadable: the signature has the fields format/],
        ];
        for (const [c, re, now] of cases) {
            const v = verifyBackup(c, TRUST, now ?? NOW);
            assert.ok(!v.trusted, re.source);
            assert.match((v as { reason: string }).reason, re);
        }
        // A valid signature whose fields were edited afterwards (the sha256, the public key) does not verify.
        const genuine = JSON.parse(signBackup(HOST.secretKey, { object: backupKey("app1", new Date("2026-12-04T03:30:00Z")), bytes: 1000, sha256: "ab".repeat(32) }));
        for (const edit of [{ sha256: "ef".repeat(32) }, { publicKey: other.publicKey }]) {
            const v = verifyBackup(candidate({ sigText: JSON.stringify({ ...genuine, ...edit }) }), [...TRUST, { publicKey: other.publicKey }], NOW);
            assert.match((v as { reason: string }).reason, /does not verify .*forged or altered/, JSON.stringify(edit));
        }
        // Hostile field values are not signatures at all.
        for (const edit of [{ object: "../../etc/passwd" }, { bytes: -1 }, { bytes: 1.5 }, { sha256: "AB".repeat(32) }, { signature: "x" }, { extra: 1 }]) {
            const v = verifyBackup(candidate({ sigText: JSON.stringify({ ...genuine, ...edit }) }), TRUST, NOW);
            assert.match((v as { reason: string }).reason, /unreadable/, JSON.stringify(edit));
        }
    });

    it("a retired key: trusted for what the store got before retiredAt, refused after", () => {
        const stored = new Date("2026-12-04T03:30:40Z");
        assert.ok(verifyBackup(candidate(), [{ publicKey: HOST.publicKey, retiredAt: new Date(stored.getTime() + 5000) }], NOW).trusted, "object and signature stored before");
        const v = verifyBackup(candidate(), [{ publicKey: HOST.publicKey, retiredAt: new Date(stored.getTime() - 1000) }], NOW);
        assert.match((v as { reason: string }).reason, /after its signing key .* was retired/);
        // Uploaded unsigned before the retirement, signed after it: refused too.
        const lateSignature = candidate({ storedAfterMs: 40_000, sigStoredAfterMs: 3_600_000 });
        const late = verifyBackup(lateSignature, [{ publicKey: HOST.publicKey, retiredAt: new Date(stored.getTime() + 60_000) }], NOW);
        assert.match((late as { reason: string }).reason, /\(or its signature\) was stored at .* after its signing key .* was retired/);
    });

    it("the downloaded bytes must hash to the signed sha256", () => {
        assert.strictEqual(checkSignedBytes({ object: "x", bytes: 3, sha256: crypto.createHash("sha256").update("abc").digest("hex") }, 3, crypto.createHash("sha256").update("abc").digest("hex")), undefined);
        assert.match(checkSignedBytes({ object: "x", bytes: 3, sha256: "00".repeat(32) }, 3, "11".repeat(32))!, /not the one signed/);
    });

    it("pins: strings and { key, retiredAt }, from config JSON or the stack file's YAML; anything else named", () => {
        const pair = generateSigningKey();
        assert.deepStrictEqual(parseTrustedKeys(JSON.stringify([pair.publicKey, { key: HOST.publicKey, retiredAt: "2026-12-01T00:00:00Z" }])), [{ publicKey: pair.publicKey }, { publicKey: HOST.publicKey, retiredAt: new Date("2026-12-01T00:00:00Z") }]);
        assert.deepStrictEqual(pinnedSigningKeys(`config:\n  platform:backupSigningKeys:\n    - ${pair.publicKey}\n    - key: ${HOST.publicKey}\n      retiredAt: "2026-12-01T00:00:00Z"\n`).length, 2);
        assert.deepStrictEqual(pinnedSigningKeys(""), []);
        assert.throws(() => parseTrustedKeys(["ed25519:x"]), /backupSigningKeys\[0\] is not a backup signing public key/);
        assert.throws(() => parseTrustedKeys([{ key: pair.publicKey, retiredAt: "2026-12-01" }]), /\[0\]\.retiredAt is not a UTC time/);
    });
});

describe("one unreadable signature refuses its backup only (io/restore.ts stores)", () => {
    const at = new Date(Date.now() - 60_000);
    const good = backupKey("app1", at);
    const bad = backupKey("app1", new Date(at.getTime() + 1000));
    const body = Buffer.from("encrypted bytes");
    const sha = crypto.createHash("sha256").update(body).digest("hex");
    const sig = (key: string) => signBackup(HOST.secretKey, { object: key, bytes: body.length, sha256: sha });

    it("the bucket: a signature whose GET fails (an archived storage class, swapped for a big one) is a refusal, not a failed listing", async () => {
        const objects = [good, good + ".sig", bad, bad + ".sig"].map((key) => ({ key, size: key.endsWith(".sig") ? 300 : body.length, lastModified: new Date(at.getTime() + 5000) }));
        const client = {
            describe: () => "stub bucket",
            list: async () => objects,
            getText: async (key: string) => {
                if (key === bad + ".sig") throw new Error("HTTP 403 InvalidObjectState");
                return sig(good);
            },
            download: async () => 0,
        };
        const store = new S3BackupStore(client as unknown as S3Client, { keys: TRUST });
        assert.deepStrictEqual((await store.list("app1")).map((r) => r.key), [good]);
        const [refused] = await store.refused("app1");
        assert.strictEqual(refused.ref.key, bad);
        assert.match(refused.reason, /signature is unreadable/);
    });

    it("the directory: a signature that is a directory, a FIFO or a link to /dev/zero refuses its backup and hangs nothing", async () => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "platform-sigs-"));
        try {
            fs.mkdirSync(path.join(root, "app1"));
            fs.writeFileSync(path.join(root, good), body);
            fs.writeFileSync(path.join(root, good + ".sig"), sig(good));
            const odd = [1, 2, 3].map((n) => backupKey("app1", new Date(at.getTime() + n * 1000)));
            for (const k of odd) fs.writeFileSync(path.join(root, k), body);
            fs.mkdirSync(path.join(root, odd[0] + ".sig"));
            assert.strictEqual(spawnSync("mkfifo", [path.join(root, odd[1] + ".sig")]).status, 0);
            fs.symlinkSync("/dev/zero", path.join(root, odd[2] + ".sig"));
            const store = new DirectoryBackupStore(root, { keys: TRUST });
            assert.deepStrictEqual((await store.list("app1")).map((r) => r.key), [good]);
            const refused = await store.refused("app1");
            assert.deepStrictEqual(refused.map((r) => r.ref.key).sort(), [...odd].sort());
            for (const r of refused) assert.match(r.reason, /signature is unreadable/);
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });
});

describe("npm run backup:signing-key (commands/backup-signing-key.ts)", () => {
    it("arguments: --stack is required and plain; --rotate retires every active pin", () => {
        assert.strictEqual(parseSigningKeyArgs(["--help"]), "help");
        assert.deepStrictEqual(parseSigningKeyArgs(["--stack", "prod", "--rotate"]), { stack: "prod", rotate: true });
        for (const argv of [[], ["--stack"], ["--stack", "prod; id"], ["--stack", "prod", "--bogus"], ["--stack", "prod", "--retired-at", "2026-12-01T00:00:00Z"], ["--stack", "prod", "--rotate", "--retired-at", "yesterday"], ["--stack", "prod", "--rotate", "--retired-at", "2999-01-01T00:00:00Z"]]) {
            assert.throws(() => parseSigningKeyArgs(argv), JSON.stringify(argv));
        }
        assert.deepStrictEqual(parseSigningKeyArgs(["--stack", "prod", "--rotate", "--retired-at", "2026-12-01T00:00:00Z"]), { stack: "prod", rotate: true, retiredAt: new Date("2026-12-01T00:00:00Z") });
        const now = new Date("2026-12-04T10:00:00.123Z");
        const retired = { publicKey: HOST.publicKey, retiredAt: new Date("2026-01-01T00:00:00Z") };
        const next = nextPins([{ publicKey: TEST_SIGNING_KEYS.documented.publicKey }, retired], "ed25519:new", true, now);
        assert.deepStrictEqual(next, [{ publicKey: TEST_SIGNING_KEYS.documented.publicKey, retiredAt: new Date("2026-12-04T10:00:00Z") }, retired, { publicKey: "ed25519:new" }]);
    });

    it("on the real Pulumi CLI: sets the secret key, pins its public half, and a rotation retires the old pin", function () {
        if (spawnSync("pulumi", ["version"]).status !== 0) {
            if (process.env.CI === "true") assert.fail("the Pulumi CLI is missing");
            this.skip();
        }
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-signing-cli-"));
        const env = { ...process.env, PULUMI_CONFIG_PASSPHRASE: "signing-test", PULUMI_BACKEND_URL: `file://${dir}/state`, PULUMI_SKIP_UPDATE_CHECK: "true" };
        try {
            fs.mkdirSync(path.join(dir, "state"));
            fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: platform\nruntime: nodejs\n");
            const init = spawnSync("pulumi", ["stack", "init", "t", "--non-interactive", "--cwd", dir], { env, encoding: "utf8" });
            assert.strictEqual(init.status, 0, init.stderr);
            const lines: string[] = [];
            runSigningKey({ stack: "t", rotate: false }, { root: dir, env, log: (l) => lines.push(l) });
            const stackFile = fs.readFileSync(path.join(dir, "Pulumi.t.yaml"), "utf8");
            assert.match(stackFile, /platform:backupSigningKey:\n {4}secure: v1:/, "stored encrypted");
            const [first] = pinnedSigningKeys(stackFile);
            const secret = spawnSync("pulumi", ["config", "get", "platform:backupSigningKey", "--stack", "t", "--cwd", dir], { env, encoding: "utf8" }).stdout.trim();
            assert.strictEqual(signingPublicKey(secret), first.publicKey, "the pin is the secret key's public half");
            assert.ok(!lines.join("\n").includes(secret), "the private key is never printed");
            runSigningKey({ stack: "t", rotate: true }, { root: dir, env, log: () => undefined });
            const pins = pinnedSigningKeys(fs.readFileSync(path.join(dir, "Pulumi.t.yaml"), "utf8"));
            assert.strictEqual(pins.length, 2);
            assert.strictEqual(pins[0].publicKey, first.publicKey);
            assert.ok(pins[0].retiredAt instanceof Date && Math.abs(pins[0].retiredAt.getTime() - Date.now()) < 60_000, "the old key is retired now");
            const rotated = spawnSync("pulumi", ["config", "get", "platform:backupSigningKey", "--stack", "t", "--cwd", dir], { env, encoding: "utf8" }).stdout.trim();
            assert.strictEqual(signingPublicKey(rotated), pins[1].publicKey);
            assert.strictEqual(pins[1].retiredAt, undefined);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
