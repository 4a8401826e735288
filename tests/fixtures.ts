import { catalog } from "../apps";
import { PlatformConfig, RawConfig, parsePlatformConfig } from "../config/platformConfig";
import { TEST_AGE_RECIPIENTS, TEST_SIGNING_KEYS, TEST_SSH_PUBLIC_KEYS } from "../config/testValues";
import { FAKE_HOST_KEY } from "./harness";

/** An age recipient whose private key is nowhere: tests that decrypt make their own pair. */
export const BACKUP_RECIPIENT = TEST_AGE_RECIPIENTS.fixture;

export const PUBLIC_KEY = `${FAKE_HOST_KEY} deploy@test`;

/** The operator the backup bucket's policy keeps full access for (platform:backupAdministrators). */
export const BACKUP_ADMINISTRATOR = "user_id:11111111-2222-3333-4444-555555555555";

export const LOCAL_RAW: RawConfig = { target: "local", apps: JSON.stringify({ demo: "1.27-alpine" }) };

export const PROD_RAW: RawConfig = {
    target: "scaleway",
    domain: "example.com",
    acmeEmail: "ops@example.com",
    instanceType: "DEV1-M",
    sshPublicKey: PUBLIC_KEY,
    adminCidrs: JSON.stringify(["203.0.113.10/32", "198.51.100.0/24"]),
    apps: JSON.stringify({ app1: "1.4.2", app2: "sha256:" + "ab".repeat(32) }),
    registryUsername: "ci-bot",
    registryToken: "ghp_test",
    backupPublicKey: BACKUP_RECIPIENT,
    backupSigningKey: TEST_SIGNING_KEYS.fixture.secretKey,
    backupSigningKeys: JSON.stringify([TEST_SIGNING_KEYS.fixture.publicKey]),
    backupAdministrators: JSON.stringify([BACKUP_ADMINISTRATOR]),
};

/** The keys PROD_RAW holds as secrets (`pulumi config set --secret`). */
export const PROD_SECRET_KEYS: readonly string[] = ["registryToken", "backupSigningKey"];
const SECRETS = new Set(PROD_SECRET_KEYS);

/** Parses as the test stacks do: the suite's published keys are accepted (config/testValues.ts). */
export function parse(raw: RawConfig, isSecret: (key: string) => boolean = (k) => SECRETS.has(k)): PlatformConfig {
    return parsePlatformConfig(raw, { catalog, isSecret, testStack: true });
}

/** Public keys made with ssh-keygen, one of each type the platform accepts. */
export const REAL_KEYS: readonly string[] = [
    TEST_SSH_PUBLIC_KEYS.ed25519,
    TEST_SSH_PUBLIC_KEYS.rsa,
    TEST_SSH_PUBLIC_KEYS.ecdsa256,
    TEST_SSH_PUBLIC_KEYS.ecdsa384,
    TEST_SSH_PUBLIC_KEYS.ecdsa521,
].map((key) => `${key} key@test`);
