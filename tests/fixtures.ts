import { catalog } from "../apps";
import { PlatformConfig, RawConfig, parsePlatformConfig } from "../config/platformConfig";
import { FAKE_HOST_KEY } from "./harness";

/** An age recipient whose private key is nowhere: tests that decrypt make their own pair. */
export const BACKUP_RECIPIENT = "age1j8lgalt4h0f5e6rwsumc46956aglmy87ga7vmzjdmk5wugcjdqrswyf486";

export const PUBLIC_KEY = `${FAKE_HOST_KEY} deploy@test`;
export const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";

export const LOCAL_RAW: RawConfig = { target: "local", apps: JSON.stringify({ demo: "1.27-alpine" }) };

export const PROD_RAW: RawConfig = {
    target: "scaleway",
    domain: "example.com",
    acmeEmail: "ops@example.com",
    instanceType: "DEV1-M",
    sshPublicKey: PUBLIC_KEY,
    sshPrivateKey: PRIVATE_KEY,
    adminCidrs: JSON.stringify(["203.0.113.10/32", "198.51.100.0/24"]),
    apps: JSON.stringify({ app1: "1.4.2", app2: "sha256:" + "ab".repeat(32) }),
    registryUsername: "ci-bot",
    registryToken: "ghp_test",
    backupPublicKey: BACKUP_RECIPIENT,
};

const SECRETS = new Set(["sshPrivateKey", "registryToken"]);

export function parse(raw: RawConfig, isSecret: (key: string) => boolean = (k) => SECRETS.has(k)): PlatformConfig {
    return parsePlatformConfig(raw, { catalog, isSecret });
}

/** Public keys made with ssh-keygen, one of each type the platform accepts. */
export const REAL_KEYS: readonly string[] = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPpqNifFOAL4sF4C3v8vB948BXYIKBAcbBYI1GgoJZK1 key@test",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCU2TjvaNMu80QoNZa0dB+5IJP2btTELk2kaa+7wLj9jOHmzu2CUIkUKdfmoaeA6HriHBhDW8tYQFyouLVQcqsYQVorMNv2vTV9vOmvatysZ5TWorSqSzbot8GzURMBdTscLOprYbhQms7KDBT8nBNQ7Iq4jPeslyzWZGUtTw/goPJVe1CrOMqFICZCVYQwfvLFcXwpeOkI8+/lzIZorgk2dswNHTGHv79ap6fmQqB/Rz8an3fXlBPKn9N/M+BjmD4jlN18wPbiipjnP6O9Fy0VmxgHM/z6ptMguI0XFAENM3+B46lWoQQGMBCTRnz4KQsEWBVgkFgs1jKJWhUQhS7F key@test",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMNv8VigOnkDBAXPOTxblNNaoA4xG6P1Vq6MpBNQI8kwS7LFK1/ILh9qSd7cmR0ac5UVBphJFbJdLnj+qMeS99s= key@test",
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBMbLFMZYL0oWZUJjpd34Hxa8ZEf+jf6GBwsZvsTwiQvFpfcMV6QEYKSdCOEdREM93AEYyZmaeOb5NeTgLvHv5/dgBt6oSXcmqRqaZHt6++uSv1mVM5f378neQXxJibjMLQ== key@test",
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBACdzXzO+48ui+d9wRUI0IUCJDAIrefupNwwqJOunsXkb2RRdu+C4aYu3dfaX2IQhjlNf48kUorHwuAcXg0Mfmg5QgDVQS4EHGKXSBl3xbcXSJ5YxDxKfNOjCeOwcimh6PzXisNDMyX5mEzhspePsw4rSFjNbfV42dxtcUekeFTYxlGJSw== key@test",
];
