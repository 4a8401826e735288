// Signed backups: the formats and checks, no I/O.
//
// Why: backups are encrypted to a public key, which anyone can read (Pulumi.<stack>.yaml), and the
// host's S3 key may put objects. Either one alone could plant `app1-20991231T235959Z.tar.age`, a
// perfectly decryptable "newest" backup, for a restore, the drill or the migration to trust. So the
// host signs each backup with an Ed25519 key of its own (platform:backupSigningKey, delivered like its
// S3 key, never in a file of the repository), and every reader trusts only the public keys the operator
// pins in the stack file (platform:backupSigningKeys). What is signed is a statement naming the object
// and the sha256 and size of its encrypted bytes: the manifest is inside those bytes, so it is signed too.
//
// A stolen host key (its signing key and its S3 key) can still sign a backup named after the moment it
// is uploaded. It cannot sign one the readers take for older or newer than that: the object store's
// LastModified, which no client sets, must agree with the name. Retiring the key in the stack file
// (retiredAt) refuses everything it signs afterwards and keeps what it signed before. (The local
// stack's directory has only mtimes, which its writer sets: there the writer is the operator's own
// user, and the time checks are a consistency check, not a defence.)
import * as crypto from "crypto";
import { BackupRef } from "./backup";

export const SIGNATURE_FORMAT = "platform-backup-signature/1";
/** The signature of `<app>/<name>.tar.age` is the object `<app>/<name>.tar.age.sig`. */
export const SIGNATURE_SUFFIX = ".sig";

const PUBLIC_PREFIX = "ed25519:";
const SECRET_PREFIX = "ed25519-secret:";
const KEY_BYTES = /^[A-Za-z0-9+/]{43}=$/;
// DER prefixes of an Ed25519 SubjectPublicKeyInfo and PKCS#8 private key (RFC 8410): the raw 32 bytes follow.
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** Clocks disagree a little: a name may be this far ahead of the object store's LastModified, or of now. */
export const CLOCK_SKEW_MS = 10 * 60_000;
/**
 * How long after its name's time a backup can reach the store: the backup run's deadline
 * (hostScripts/backup.sh BACKUP_DEADLINE_SECONDS, 10800) and its kill grace, plus the skew.
 */
export const MAX_UPLOAD_DELAY_MS = (10_800 + 30) * 1000 + CLOCK_SKEW_MS;

/**
 * 32 bytes in canonical base64 only: the last character of 44 carries two bits the decoder ignores,
 * so four spellings would decode to one key, and a published key re-spelled would pass a string
 * comparison against the list of published keys.
 */
function isKeyText(value: unknown, prefix: string): boolean {
    if (typeof value !== "string" || !value.startsWith(prefix)) return false;
    const b64 = value.slice(prefix.length);
    return KEY_BYTES.test(b64) && Buffer.from(b64, "base64").toString("base64") === b64;
}

export function isSigningPublicKey(value: string): boolean {
    return isKeyText(value, PUBLIC_PREFIX);
}

export function isSigningSecretKey(value: string): boolean {
    return isKeyText(value, SECRET_PREFIX);
}

function seedOf(secretKey: string): Buffer {
    if (!isSigningSecretKey(secretKey)) throw new Error("not a backup signing key (ed25519-secret:<base64 of 32 bytes>)");
    return Buffer.from(secretKey.slice(SECRET_PREFIX.length), "base64");
}

function privateKeyObject(secretKey: string): crypto.KeyObject {
    return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seedOf(secretKey)]), format: "der", type: "pkcs8" });
}

function publicKeyObject(publicKey: string): crypto.KeyObject {
    if (!isSigningPublicKey(publicKey)) throw new Error("not a backup signing public key (ed25519:<base64 of 32 bytes>)");
    return crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(publicKey.slice(PUBLIC_PREFIX.length), "base64")]), format: "der", type: "spki" });
}

/** A new key pair, in the config's formats. */
export function generateSigningKey(): { secretKey: string; publicKey: string } {
    const secretKey = SECRET_PREFIX + crypto.randomBytes(32).toString("base64");
    return { secretKey, publicKey: signingPublicKey(secretKey) };
}

/** The public half, as platform:backupSigningKeys pins it. */
export function signingPublicKey(secretKey: string): string {
    const der = crypto.createPublicKey(privateKeyObject(secretKey)).export({ format: "der", type: "spki" });
    return PUBLIC_PREFIX + der.subarray(SPKI_PREFIX.length).toString("base64");
}

/** The key as the host's `openssl pkeyutl -sign` reads it (PKCS#8 PEM). */
export function signingKeyPem(secretKey: string): string {
    return privateKeyObject(secretKey).export({ format: "pem", type: "pkcs8" }).toString();
}

export interface SignedStatement {
    /** The object key, `app1/app1-20260102T033000Z.tar.age`. */
    readonly object: string;
    readonly bytes: number;
    readonly sha256: string;
}

/** The exact bytes signed (hostScripts/backup.sh prints the same lines: a test keeps them equal). */
export function signatureStatement(s: SignedStatement): string {
    return `${SIGNATURE_FORMAT}\nobject ${s.object}\nbytes ${s.bytes}\nsha256 ${s.sha256}\n`;
}

export interface SignatureFile extends SignedStatement {
    readonly publicKey: string;
    /** base64 of the 64-byte Ed25519 signature of signatureStatement(...) */
    readonly signature: string;
}

/** Signs as the host does (tests, and a backup re-signed off-host). */
export function signBackup(secretKey: string, s: SignedStatement): string {
    const signature = crypto.sign(null, Buffer.from(signatureStatement(s)), privateKeyObject(secretKey)).toString("base64");
    return JSON.stringify({ format: SIGNATURE_FORMAT, object: s.object, bytes: s.bytes, sha256: s.sha256, publicKey: signingPublicKey(secretKey), signature }) + "\n";
}

/** Strict: exactly the fields the host writes, each of its form; anything else is not a signature. */
export function parseSignatureFile(text: string): SignatureFile {
    let doc: unknown;
    try {
        doc = JSON.parse(text);
    } catch {
        throw new Error("the signature is not JSON");
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new Error("the signature is not a JSON object");
    const d = doc as Record<string, unknown>;
    const fields = Object.keys(d).sort().join(",");
    if (fields !== "bytes,format,object,publicKey,sha256,signature") throw new Error(`the signature has the fields ${fields}, not those of ${SIGNATURE_FORMAT}`);
    if (d.format !== SIGNATURE_FORMAT) throw new Error(`the signature's format is ${JSON.stringify(d.format)}, not ${SIGNATURE_FORMAT}`);
    if (typeof d.object !== "string" || !/^[a-z][a-z0-9-]{0,30}\/[a-z][a-z0-9-]{0,30}-\d{8}T\d{6}Z\.tar\.age$/.test(d.object)) throw new Error("the signature names no backup object");
    if (typeof d.bytes !== "number" || !Number.isSafeInteger(d.bytes) || d.bytes <= 0) throw new Error("the signature's size is not a positive whole number");
    if (typeof d.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(d.sha256)) throw new Error("the signature's sha256 is not 64 hex digits");
    if (typeof d.publicKey !== "string" || !isSigningPublicKey(d.publicKey)) throw new Error("the signature names no Ed25519 public key");
    if (typeof d.signature !== "string" || !/^[A-Za-z0-9+/]{86}==$/.test(d.signature)) throw new Error("the signature is not 64 bytes of base64");
    return { object: d.object, bytes: d.bytes, sha256: d.sha256, publicKey: d.publicKey, signature: d.signature };
}

/** A pinned public key; after `retiredAt` nothing it signs is trusted (what it signed before still is). */
export interface TrustedKey {
    readonly publicKey: string;
    readonly retiredAt?: Date;
}

/**
 * platform:backupSigningKeys as the stack file holds it: a list of `ed25519:…` strings or
 * `{ key: "ed25519:…", retiredAt: "2026-12-01T00:00:00Z" }`. Throws naming the entry that is wrong.
 */
export function parseTrustedKeys(value: unknown, where = "platform:backupSigningKeys"): TrustedKey[] {
    if (value === undefined || value === null || value === "") return [];
    let list = value;
    if (typeof list === "string") {
        try {
            list = JSON.parse(list);
        } catch {
            throw new Error(`${where} is not a list`);
        }
    }
    if (!Array.isArray(list)) throw new Error(`${where} is not a list of ed25519:… keys`);
    return list.map((entry, i) => {
        const at = `${where}[${i}]`;
        if (typeof entry === "string") {
            if (!isSigningPublicKey(entry)) throw new Error(`${at} is not a backup signing public key (ed25519: and 44 characters of base64)`);
            return { publicKey: entry };
        }
        if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new Error(`${at} is neither a key nor { key, retiredAt }`);
        const e = entry as Record<string, unknown>;
        const extra = Object.keys(e).filter((k) => k !== "key" && k !== "retiredAt");
        if (extra.length > 0) throw new Error(`${at} has unknown field(s) ${extra.join(", ")} (only key and retiredAt)`);
        if (typeof e.key !== "string" || !isSigningPublicKey(e.key)) throw new Error(`${at}.key is not a backup signing public key (ed25519: and 44 characters of base64)`);
        if (e.retiredAt === undefined) return { publicKey: e.key };
        const retiredAt = typeof e.retiredAt === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(e.retiredAt) ? new Date(e.retiredAt) : undefined;
        if (retiredAt === undefined || Number.isNaN(retiredAt.getTime())) throw new Error(`${at}.retiredAt is not a UTC time like 2026-12-01T00:00:00Z`);
        return { publicKey: e.key, retiredAt };
    });
}

/** What a listing tells about one backup: its object (with when the store got it, `ref.lastModified`) and its signature object. */
export interface BackupCandidate {
    readonly ref: BackupRef;
    readonly signature?: { readonly text: string; readonly lastModified?: Date };
}

export type BackupVerdict = { readonly trusted: true; readonly signed: SignatureFile } | { readonly trusted: false; readonly unsigned: boolean; readonly reason: string };

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Whether the store's clock agrees with the name: the object arrived after the name's time, within the run's deadline. */
function timeProblem(what: string, name: Date, lastModified: Date | undefined): string | undefined {
    if (lastModified === undefined || Number.isNaN(lastModified.getTime())) return `the store does not say when ${what} was stored`;
    const delay = lastModified.getTime() - name.getTime();
    if (delay < -CLOCK_SKEW_MS) return `${what} was stored at ${iso(lastModified)}, before the time its name claims (${iso(name)}): a name can be chosen, the store's time cannot`;
    if (delay > MAX_UPLOAD_DELAY_MS) return `${what} was stored at ${iso(lastModified)}, ${(delay / 3_600_000).toFixed(1)} h after the time its name claims (${iso(name)}): no backup run lasts that long, so it is not what the name says`;
    return undefined;
}

/**
 * Whether a listed backup may be trusted before anything is downloaded: dated no later than now, its
 * object and signature stored when its name says, the signature's statement naming this very object,
 * made by a pinned key that was not retired when the object was stored. The sha256 and size it signs
 * are checked against the downloaded bytes (checkSignedBytes) before they are decrypted.
 */
export function verifyBackup(c: BackupCandidate, trust: readonly TrustedKey[], now: Date): BackupVerdict {
    const refuse = (reason: string, unsigned = false): BackupVerdict => ({ trusted: false, unsigned, reason });
    const named = c.ref.createdAt;
    if (named.getTime() > now.getTime() + CLOCK_SKEW_MS) return refuse(`it is dated ${iso(named)}, in the future`);
    const stored = timeProblem("the backup", named, c.ref.lastModified);
    if (stored) return refuse(stored);
    if (c.signature === undefined) return refuse(`it is not signed (no ${c.ref.key}${SIGNATURE_SUFFIX})`, true);
    let s: SignatureFile;
    try {
        s = parseSignatureFile(c.signature.text);
    } catch (e) {
        return refuse(`its signature is unreadable: ${(e as Error).message}`);
    }
    const signedAt = timeProblem("its signature", named, c.signature.lastModified);
    if (signedAt) return refuse(signedAt);
    if (s.object !== c.ref.key) return refuse(`its signature is of another object (${s.object}): a signed backup copied under a new name`);
    if (c.ref.bytes !== undefined && c.ref.bytes !== s.bytes) return refuse(`it is ${c.ref.bytes} bytes, but its signature is of ${s.bytes} bytes`);
    const pinned = trust.find((k) => k.publicKey === s.publicKey);
    if (pinned === undefined) return refuse(`it is signed by ${s.publicKey}, which is not pinned in platform:backupSigningKeys`);
    let valid = false;
    try {
        valid = crypto.verify(null, Buffer.from(signatureStatement(s)), publicKeyObject(s.publicKey), Buffer.from(s.signature, "base64"));
    } catch {
        valid = false;
    }
    if (!valid) return refuse(`its signature does not verify with ${s.publicKey}: forged or altered`);
    // Both the object and its signature must predate the retirement: a thief could upload objects
    // unsigned before it (refused, harmless-looking) and sign them afterwards.
    const storedAt = Math.max(c.ref.lastModified!.getTime(), c.signature.lastModified!.getTime());
    if (pinned.retiredAt !== undefined && storedAt >= pinned.retiredAt.getTime()) {
        return refuse(`it (or its signature) was stored at ${iso(new Date(storedAt))}, after its signing key ${s.publicKey} was retired (${iso(pinned.retiredAt)})`);
    }
    return { trusted: true, signed: s };
}

/** The downloaded bytes must be the signed ones; a problem in words, or undefined. */
export function checkSignedBytes(signed: SignedStatement, bytes: number, sha256: string): string | undefined {
    if (bytes !== signed.bytes || sha256 !== signed.sha256) {
        return `the downloaded backup is not the one signed (${bytes} bytes, sha256 ${sha256.slice(0, 12)}…; signed: ${signed.bytes} bytes, ${signed.sha256.slice(0, 12)}…)`;
    }
    return undefined;
}
