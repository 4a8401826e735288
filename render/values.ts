// What values may reach the renderers: checks of image releases, domains, email addresses, CIDRs, SSH
// public keys, cron schedules, age recipients and URLs, exact to the letter of each format. Pure. The config schema
// (config/) reports a value that fails one with its key and fix; the renderers refuse it again, so a
// value reaching a shell, cron, nginx or YAML was always checked for that reader.
import * as net from "net";

// Docker's tag grammar, and a content digest.
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
export const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
// Strict on purpose: the address reaches a cron line and certbot's command line. No quotes, spaces,
// `%` (cron's newline), `$`, `;` or anything else a shell or cron would read.
const EMAIL_LOCAL = /^[A-Za-z0-9](?:[A-Za-z0-9._+-]{0,62}[A-Za-z0-9_+-])?$/;
const HEARTBEAT_URL = /^https:\/\/[a-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~\/-]*)?$/;
const SSH_KEY_TYPES = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** An age X25519 recipient: `age1` and 58 bech32 characters. */
export function isAgeRecipient(value: string): boolean {
    return AGE_RECIPIENT.test(value);
}

/** A content digest, `sha256:` and 64 hex digits (the other shape of a release). */
export function isDigest(value: string): boolean {
    return DIGEST.test(value);
}

export function isRelease(value: string): boolean {
    return TAG.test(value) || DIGEST.test(value);
}

/** `repo:tag` or `repo@sha256:…`, whichever the release is. */
export function imageReference(repository: string, release: string): string {
    return DIGEST.test(release) ? `${repository}@${release}` : `${repository}:${release}`;
}

export function isCidr(value: string): boolean {
    const slash = value.indexOf("/");
    if (slash < 0) return false;
    const address = value.slice(0, slash);
    const bits = value.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits)) return false;
    const family = net.isIP(address);
    if (family === 0) return false;
    return Number(bits) <= (family === 4 ? 32 : 128);
}

export function isEmail(value: string): boolean {
    const at = value.lastIndexOf("@");
    if (at <= 0 || value.length > 254) return false;
    return EMAIL_LOCAL.test(value.slice(0, at)) && !value.slice(0, at).includes("..") && DOMAIN.test(value.slice(at + 1));
}

/** The length-prefixed fields of an SSH public key blob (RFC 4253 §6.6), or undefined when truncated. */
function sshBlobFields(blob: Buffer): Buffer[] | undefined {
    const fields: Buffer[] = [];
    let offset = 0;
    while (offset < blob.length) {
        if (offset + 4 > blob.length) return undefined;
        const length = blob.readUInt32BE(offset);
        offset += 4;
        if (offset + length > blob.length) return undefined;
        fields.push(blob.subarray(offset, offset + length));
        offset += length;
    }
    return fields;
}

const ECDSA_POINT_BYTES: Readonly<Record<string, number>> = { nistp256: 65, nistp384: 97, nistp521: 133 };

/** Whether the decoded fields are a whole key of `type`: every field present, of the right size, nothing left over. */
function isWholeKey(type: string, fields: Buffer[]): boolean {
    const [, ...rest] = fields;
    switch (type) {
        case "ssh-ed25519":
            return rest.length === 1 && rest[0].length === 32;
        case "sk-ssh-ed25519@openssh.com":
            return rest.length === 2 && rest[0].length === 32 && rest[1].length > 0;
        case "ssh-rsa": {
            if (rest.length !== 2) return false;
            const modulus = rest[1][0] === 0 ? rest[1].subarray(1) : rest[1];
            return rest[0].length > 0 && modulus.length * 8 >= 2048;
        }
        default: {
            const curve = /nistp(256|384|521)/.exec(type)?.[0];
            if (curve === undefined) return false;
            const sk = type.startsWith("sk-");
            if (rest.length !== (sk ? 3 : 2)) return false;
            return rest[0].toString() === curve && rest[1].length === ECDSA_POINT_BYTES[curve] && rest[1][0] === 4;
        }
    }
}

/**
 * An OpenSSH public key line whose base64 blob is a whole key of the type it names: a truncated
 * paste, a key labelled with another type, or an RSA key under 2048 bits is refused.
 */
export function isSshPublicKey(value: string): boolean {
    // Control characters (tabs, newlines) would reach cloud-init's YAML and authorized_keys as written.
    if (/[\u0000-\u001f\u007f]/.test(value.trim())) return false;
    const parts = value.trim().split(/ +/);
    if (parts.length < 2 || !SSH_KEY_TYPES.includes(parts[0])) return false;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(parts[1]) || parts[1].length % 4 !== 0) return false;
    if (parts.slice(2).some((p) => !/^[A-Za-z0-9@._+=:-]+$/.test(p))) return false;
    const fields = sshBlobFields(Buffer.from(parts[1], "base64"));
    if (fields === undefined || fields.length === 0 || fields[0].toString() !== parts[0]) return false;
    return isWholeKey(parts[0], fields);
}

/** A CIDR as a range of addresses: its family, first address and size, all exact (bigint). */
export function cidrRange(value: string): { family: 4 | 6; first: bigint; size: bigint; hostBitsSet: boolean } | undefined {
    if (!isCidr(value)) return undefined;
    const [address, bitsText] = value.split("/");
    const family = net.isIP(address) as 4 | 6;
    const width = family === 4 ? 32 : 128;
    const bits = Number(bitsText);
    let numeric = 0n;
    if (family === 4) {
        for (const octet of address.split(".")) numeric = (numeric << 8n) | BigInt(Number(octet));
    } else {
        const socket = new net.SocketAddress({ address, family: "ipv6" });
        const groups = expandIpv6(socket.address);
        for (const g of groups) numeric = (numeric << 16n) | BigInt(parseInt(g, 16));
    }
    const size = 1n << BigInt(width - bits);
    const first = (numeric / size) * size;
    return { family, first, size, hostBitsSet: first !== numeric };
}

function expandIpv6(address: string): string[] {
    let text = address;
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (v4) {
        const o = v4[1].split(".").map(Number);
        text = text.slice(0, -v4[1].length) + `${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
    }
    const [head, tail] = text.split("::");
    const h = head === "" ? [] : head.split(":");
    const t = tail === undefined ? [] : tail === "" ? [] : tail.split(":");
    const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill("0");
    return [...h, ...fill, ...t];
}

/**
 * Whether the CIDRs together cover every IPv4 or every IPv6 address: `0.0.0.0/0`, `0.0.0.0/00`, the
 * pair `0.0.0.0/1` + `128.0.0.0/1`, `::/0`, and any other split of the whole space.
 */
export function coversWholeInternet(cidrs: readonly string[]): boolean {
    for (const family of [4, 6] as const) {
        const total = 1n << BigInt(family === 4 ? 32 : 128);
        const ranges = cidrs
            .map(cidrRange)
            .filter((r): r is NonNullable<typeof r> => r !== undefined && r.family === family)
            .sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
        let reach = 0n;
        for (const r of ranges) {
            if (r.first > reach) break;
            if (r.first + r.size > reach) reach = r.first + r.size;
        }
        if (reach >= total) return true;
    }
    return false;
}

/** A heartbeat URL the backup script may pass to curl: https, no credentials, query, quotes or spaces. */
export function isHeartbeatUrl(value: string): boolean {
    return HEARTBEAT_URL.test(value);
}


/** Whether a cron field list is five fields of digits, `*`, `,`, `-` and `/` only, in range. */
export function isCronSchedule(value: string): boolean {
    const fields = value.trim().split(/\s+/);
    if (fields.length !== 5) return false;
    const limits = [
        [0, 59],
        [0, 23],
        [1, 31],
        [1, 12],
        [0, 7],
    ];
    return fields.every((field, i) =>
        field.split(",").every((part) => {
            const m = /^(\*|(\d{1,2})(?:-(\d{1,2}))?)(?:\/(\d{1,2}))?$/.exec(part);
            if (!m) return false;
            const [lo, hi] = limits[i];
            const numbers = [m[2], m[3]].filter((n) => n !== undefined).map(Number);
            if (numbers.some((n) => n < lo || n > hi)) return false;
            if (numbers.length === 2 && numbers[0] > numbers[1]) return false;
            return m[4] === undefined || Number(m[4]) >= 1;
        }),
    );
}
