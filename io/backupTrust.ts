// Which backup signing keys a reader of a stack's backups trusts: the ones its stack file pins
// (platform:backupSigningKeys), and on the local stack also the key its own deployment generated on
// this machine. Read by the restore, the drill, the migration and status; never by the host.
import * as fs from "fs";
import * as yaml from "js-yaml";
import { TrustedKey, isSigningPublicKey, parseTrustedKeys } from "../render/signing";
import { localBackupPaths } from "./restore";

export const SIGNING_KEY_FIX = (stack: string) => `npm run backup:signing-key -- --stack ${stack} (it sets platform:backupSigningKey and pins its public half in platform:backupSigningKeys), then pulumi up`;

/** The pinned keys of `Pulumi.<stack>.yaml`'s text (no file: none). Throws naming a malformed entry. */
export function pinnedSigningKeys(stackYaml: string): TrustedKey[] {
    if (stackYaml.trim() === "") return [];
    const doc = (yaml.load(stackYaml) ?? {}) as { config?: Record<string, unknown> };
    return parseTrustedKeys(doc.config?.["platform:backupSigningKeys"], "platform:backupSigningKeys");
}

/** The local stack's generated public key, when its first deployment has made one. */
export function localSigningKey(localDir = ".platform/local"): TrustedKey[] {
    const file = localBackupPaths(localDir).signingPublicKey;
    if (!fs.existsSync(file)) return [];
    const key = fs.readFileSync(file, "utf8").trim();
    if (!isSigningPublicKey(key)) throw new Error(`${file} does not hold a backup signing public key: delete it and its .pem, then npm run local:up`);
    return [{ publicKey: key }];
}

/** Every key a reader of `stack`'s backups trusts. */
export function stackSigningKeys(stack: string, stackYaml: string, localDir = ".platform/local"): TrustedKey[] {
    const pinned = pinnedSigningKeys(stackYaml);
    return stack === "local" ? [...pinned, ...localSigningKey(localDir).filter((k) => !pinned.some((p) => p.publicKey === k.publicKey))] : pinned;
}
