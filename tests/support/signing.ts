// The suite's backup signing key (config/testValues.ts publishes it: no real stack may use it), as the
// host holds it (a PEM file for backup.sh's SIGNING_KEY_FILE) and as readers trust it.
import * as fs from "fs";
import * as path from "path";
import { TEST_SIGNING_KEYS } from "../../config/testValues";
import { BackupTrust } from "../../io/restore";
import { signingKeyPem } from "../../render/signing";

export const TEST_SIGNING_KEY = TEST_SIGNING_KEYS.fixture;

/** Readers that trust the suite's key only. */
export const TEST_TRUST: BackupTrust = { keys: [{ publicKey: TEST_SIGNING_KEY.publicKey }] };

/** Writes the suite's signing key as a 0600 PEM in `dir`; returns its path. */
export function writeSigningKey(dir: string, secretKey: string = TEST_SIGNING_KEY.secretKey): string {
    const file = path.join(dir, `signing-${secretKey.slice(15, 23).replace(/[^A-Za-z0-9]/g, "_")}.pem`);
    fs.writeFileSync(file, signingKeyPem(secretKey), { mode: 0o600 });
    return file;
}
