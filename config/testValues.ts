// The values the test suite and the documentation publish: SSH public keys, age recipients and
// documentation addresses (RFC 5737, RFC 3849). They are in this repository for everyone to read, so
// none of them may ever guard a real server: the schema (config/platformConfig.ts) refuses each one on
// any stack that is not a test stack, with the key and the way to generate a real value.
//
// What a test stack is, and why it is hard to be one by accident: the program runs with the environment
// variable PLATFORM_TEST_STACK set to the exact phrase below. Only the test suite's mocha set-up
// (tests/support/testStack.ts) and the benchmarks set it; nothing a deployment runs does (a test greps
// the workflows, commands and scripts for it). The pure parser takes the answer as an option
// (`testStack`), false unless a caller says so.
import { cidrRange } from "../render/values";

export const TEST_STACK_ENV = "PLATFORM_TEST_STACK";
export const TEST_STACK_PHRASE = "accept-the-test-suite's-published-keys";

/** Whether this environment declares a test stack: PLATFORM_TEST_STACK is exactly the phrase, nothing else. */
export function isTestStackEnvironment(env: Readonly<Record<string, string | undefined>>): boolean {
    return env[TEST_STACK_ENV] === TEST_STACK_PHRASE;
}

/** The suite's SSH public keys (key type and blob; a comment is the user's own). */
export const TEST_SSH_PUBLIC_KEYS = {
    /** The mocked host key and the fixtures' deploy key (tests/harness.ts FAKE_HOST_KEY). */
    fake: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHMbJt8HkIVb3cQzQ0k7m4eqK5QdKHnXk0t7L1CTbsRM",
    /** Made with ssh-keygen once, one of each type the platform accepts (tests/fixtures.ts REAL_KEYS); the first is the schema's documented example. */
    ed25519: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPpqNifFOAL4sF4C3v8vB948BXYIKBAcbBYI1GgoJZK1",
    rsa: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCU2TjvaNMu80QoNZa0dB+5IJP2btTELk2kaa+7wLj9jOHmzu2CUIkUKdfmoaeA6HriHBhDW8tYQFyouLVQcqsYQVorMNv2vTV9vOmvatysZ5TWorSqSzbot8GzURMBdTscLOprYbhQms7KDBT8nBNQ7Iq4jPeslyzWZGUtTw/goPJVe1CrOMqFICZCVYQwfvLFcXwpeOkI8+/lzIZorgk2dswNHTGHv79ap6fmQqB/Rz8an3fXlBPKn9N/M+BjmD4jlN18wPbiipjnP6O9Fy0VmxgHM/z6ptMguI0XFAENM3+B46lWoQQGMBCTRnz4KQsEWBVgkFgs1jKJWhUQhS7F",
    ecdsa256: "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMNv8VigOnkDBAXPOTxblNNaoA4xG6P1Vq6MpBNQI8kwS7LFK1/ILh9qSd7cmR0ac5UVBphJFbJdLnj+qMeS99s=",
    ecdsa384: "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBMbLFMZYL0oWZUJjpd34Hxa8ZEf+jf6GBwsZvsTwiQvFpfcMV6QEYKSdCOEdREM93AEYyZmaeOb5NeTgLvHv5/dgBt6oSXcmqRqaZHt6++uSv1mVM5f378neQXxJibjMLQ==",
    ecdsa521: "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBACdzXzO+48ui+d9wRUI0IUCJDAIrefupNwwqJOunsXkb2RRdu+C4aYu3dfaX2IQhjlNf48kUorHwuAcXg0Mfmg5QgDVQS4EHGKXSBl3xbcXSJ5YxDxKfNOjCeOwcimh6PzXisNDMyX5mEzhspePsw4rSFjNbfV42dxtcUekeFTYxlGJSw==",
} as const;

/** age recipients whose private keys are nowhere: the fixtures' (tests/fixtures.ts BACKUP_RECIPIENT) and age's documented example. */
export const TEST_AGE_RECIPIENTS = {
    fixture: "age1j8lgalt4h0f5e6rwsumc46956aglmy87ga7vmzjdmk5wugcjdqrswyf486",
    documented: "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
} as const;

/**
 * Backup signing keys the suite and the documentation publish (made once with generateSigningKey in
 * render/signing.ts): anyone can sign with them, so no real stack may.
 */
export const TEST_SIGNING_KEYS = {
    /** The fixtures' and the suite's host key (tests/fixtures.ts). */
    fixture: { secretKey: "ed25519-secret:Q2eYyEaMPpW3ELLwjD6vVnCp9RHbVpE7gVDVBgIcAy4=", publicKey: "ed25519:S7RpDufi7hyOjLqqXby46JOUy9UUDSuHBz9vKMKbsmM=" },
    /** The schema's documented example. */
    documented: { secretKey: "ed25519-secret:Wf1SbBvoNbxHrdfRhHfaBSRe0G0zXtLmYThe4TJrwh8=", publicKey: "ed25519:o0hgdx5FX6p1h1BTn6+jTccBMDUShR5f8E+tiB35z3A=" },
} as const;

export function isTestSigningKey(secretKey: string): boolean {
    return Object.values(TEST_SIGNING_KEYS).some((k) => k.secretKey === secretKey.trim());
}

/** Address blocks reserved for documentation: TEST-NET-1/2/3 and IPv6's 2001:db8::/32. */
export const DOCUMENTATION_RANGES = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"] as const;

const blobOf = (line: string) => line.trim().split(/ +/).slice(0, 2).join(" ");
const testKeys: ReadonlySet<string> = new Set(Object.values(TEST_SSH_PUBLIC_KEYS));

export function isTestSshPublicKey(line: string): boolean {
    return testKeys.has(blobOf(line));
}

export function isTestAgeRecipient(recipient: string): boolean {
    return (Object.values(TEST_AGE_RECIPIENTS) as string[]).includes(recipient.trim());
}

/** Whether every address of the CIDR lies in a documentation range (no real machine has one). */
export function isTestCidr(cidr: string): boolean {
    const r = cidrRange(cidr);
    if (r === undefined) return false;
    return DOCUMENTATION_RANGES.some((d) => {
        const doc = cidrRange(d)!;
        return doc.family === r.family && r.first >= doc.first && r.first + r.size <= doc.first + doc.size;
    });
}
