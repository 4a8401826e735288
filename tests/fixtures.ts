import { catalog } from "../apps";
import { PlatformConfig, RawConfig, parsePlatformConfig } from "../lib/config";
import { FAKE_HOST_KEY } from "./harness";

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
};

const SECRETS = new Set(["sshPrivateKey", "registryToken"]);

export function parse(raw: RawConfig, isSecret: (key: string) => boolean = (k) => SECRETS.has(k)): PlatformConfig {
    return parsePlatformConfig(raw, { catalog, isSecret });
}
