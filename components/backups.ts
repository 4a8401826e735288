import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as scaleway from "@pulumiverse/scaleway";
import * as path from "path";
import {
    BACKUP_CREDENTIALS_FILE,
    BACKUP_CRON_FILE,
    BACKUP_SCRIPT_PATH,
    BACKUP_SETTINGS_FILE,
    BACKUP_SIGNING_KEY_FILE,
    DatabaseTarget,
    backupBucketPolicy,
    DRILL_PERMISSION_SETS,
    HOST_PERMISSION_SETS,
    firstBackupEnvironment,
    isRegion,
    renderBackupCron,
    renderBackupSettings,
    renderCurlCredentials,
    scalewayS3Endpoint,
} from "../render/backup";
import { BackupSettings } from "../config/platformConfig";
import { readHostScript, hostScriptPath } from "../hostScripts";
import { localCommandsPresent } from "../io/localTools";
import { shellQuote } from "../render/shell";
import { localBackupPaths } from "../io/restore";
import { signingKeyPem } from "../render/signing";
import { Host } from "./host";

export interface BackupsArgs {
    readonly host: Host;
    /** Apps whose database is backed up (those with a database, in the stack). */
    readonly apps: readonly string[];
    readonly settings: BackupSettings;
    /** scaleway: the region of the bucket (the stack's `scaleway:region`). */
    readonly region?: string;
    /**
     * scaleway: principals (`user_id:…`/`application_id:…`) that keep full access to the bucket: who
     * deploys, restores and reads backups by hand (platform:backupAdministrators). Required there: a
     * policy without them would lock everyone but the Organization's owner out. They are reviewed
     * config, never looked up from the deploying key (scaleway.iam.getApiKey): a preview runs with a
     * different, read-only key and would plan a policy for that key's principal.
     */
    readonly administrators?: readonly string[];
    /** local: directory (git-ignored) holding the backups and the generated key pair. */
    readonly localDir?: string;
    /**
     * Where pg_dump runs on the host and as whom. Absent: the container database (platform-postgres,
     * as postgres). The managed database: the client container on host 0, as the admin.
     */
    readonly database?: DatabaseTarget;
    /** What must exist before the first backup runs (the server reconciled, the app databases). */
    readonly dependsOn?: readonly pulumi.Resource[];
}

// In io/ so that the restore command reads it without loading the Pulumi SDK.
export { localBackupPaths };

const MARKER = "PLATFORM_BACKUP_EOF";

function heredoc(target: string, text: string, mode: string): string {
    if (text.includes(MARKER)) throw new Error("file content contains the heredoc marker");
    return [`cat > ${shellQuote(target + ".new")} <<'${MARKER}'`, text.replace(/\n$/, ""), MARKER, `chmod ${mode} ${shellQuote(target + ".new")}`, `mv -f ${shellQuote(target + ".new")} ${shellQuote(target)}`].join("\n");
}

/**
 * Nightly encrypted backups of every app database. prod: an Object Storage bucket (versioned, object
 * lock in GOVERNANCE mode, lifecycle expiry of current and noncurrent versions; protected and retained
 * on delete), an IAM application whose API key may only put objects (IAM policy ObjectStorageObjectsWrite
 * in the bucket's project, which is also the key's default project, and the bucket policy), and a cron job on
 * the host running hostScripts/backup.sh. The key pair reaches the host on stdin into a 0600 file, never on
 * a command line. local: the same script into a directory, with a generated key pair if none is set.
 * Both run one backup when installed or changed, so a broken setup fails the deployment, not a night.
 */
export class Backups extends pulumi.ComponentResource {
    /** Bucket name (prod) or directory (local). */
    public readonly bucket: pulumi.Output<string>;
    /** `https://s3.<region>.scw.cloud` (prod) or `file://<dir>` (local). */
    public readonly endpoint: pulumi.Output<string>;
    public readonly schedule?: pulumi.Resource;
    public readonly bucketResource?: scaleway.object.Bucket;
    public readonly hostKey?: scaleway.iam.ApiKey;
    public readonly hostPolicy?: scaleway.iam.Policy;
    /** prod: the backup drill's read-only key (secret), for the drill workflow's secrets. */
    public readonly drillKey?: pulumi.Output<{ accessKey: string; secretKey: string }>;

    constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:backup:Backups", name, {}, opts);
        const s = args.settings;
        if (args.host.kind === "scaleway") {
            const region = args.region ?? "fr-par";
            if (!isRegion(region)) throw new Error(`backups: region ${JSON.stringify(region)} is not valid`);
            if (!s.publicKey) throw new Error("backups: platform:backupPublicKey is required on the scaleway target");
            if (!s.signingKey) throw new Error("backups: platform:backupSigningKey is required on the scaleway target");
            const signingKey = s.signingKey;
            if (args.administrators === undefined || args.administrators.length === 0) {
                throw new Error("backups: platform:backupAdministrators is required on the scaleway target (config/platformConfig.ts refuses a stack without it)");
            }
            const endpoint = scalewayS3Endpoint(region);
            const suffix = new random.RandomString(`${name}-bucket-suffix`, { length: 8, special: false, upper: false }, { parent: this });
            const bucket = new scaleway.object.Bucket(
                `${name}-bucket`,
                {
                    name: pulumi.interpolate`platform-backups-${pulumi.getStack()}-${suffix.result}`,
                    region,
                    versioning: { enabled: true },
                    // Only settable at creation; the lock configuration below sets the default retention.
                    objectLockEnabled: true,
                    lifecycleRules: [
                        {
                            id: "expire-backups",
                            enabled: true,
                            expiration: { days: s.retentionDays },
                            // Versioned: expiring the current version only adds a delete marker; the data goes with this.
                            noncurrentVersionExpiration: { noncurrentDays: s.retentionDays },
                            abortIncompleteMultipartUploadDays: 1,
                        },
                    ],
                    tags: { platform: "backups" },
                },
                // The backups outlive any config change, and `pulumi destroy`.
                { parent: this, protect: true, retainOnDelete: true },
            );
            this.bucketResource = bucket;
            const lock =
                s.lockDays > 0
                    ? new scaleway.object.BucketLockConfiguration(
                          `${name}-lock`,
                          { bucket: bucket.name, region, rule: { defaultRetention: { mode: "GOVERNANCE", days: s.lockDays } } },
                          { parent: this },
                      )
                    : undefined;

            // One IAM application per role, each with its own key and the least permission sets, in the
            // bucket's project. Object Storage's S3 API takes no project parameter: a key works in its
            // default project only. Both an IAM policy and the bucket policy below must allow an action.
            const principal = (role: string, what: { application: string; key: string; policy: string; permissionSets: readonly string[] }) => {
                const application = new scaleway.iam.Application(`${name}-${role}`, { name: pulumi.interpolate`platform-backups-${pulumi.getStack()}-${role}`, description: what.application }, { parent: this });
                const key = new scaleway.iam.ApiKey(
                    `${name}-${role}-key`,
                    { applicationId: application.id, defaultProjectId: bucket.projectId, description: what.key },
                    { parent: this, additionalSecretOutputs: ["secretKey"] },
                );
                const policy = new scaleway.iam.Policy(
                    `${name}-${role}-policy`,
                    { name: pulumi.interpolate`platform-backups-${pulumi.getStack()}-${role}`, description: what.policy, applicationId: application.id, rules: [{ projectIds: [bucket.projectId], permissionSetNames: [...what.permissionSets] }] },
                    { parent: this },
                );
                return { application, key, policy };
            };
            // The host puts backups (the bucket policy: s3:PutObject on this bucket only).
            const host = principal("host", {
                application: "The platform host: puts encrypted backups, nothing else",
                key: "platform host backups (put only)",
                policy: "The platform host may put backup objects in the backup bucket's project (the bucket policy narrows it to that bucket)",
                permissionSets: HOST_PERMISSION_SETS,
            });
            const application = host.application;
            this.hostKey = host.key;
            this.hostPolicy = host.policy;
            // The drill lists and reads backups, nothing else (render/backup.ts DRILL_PERMISSION_SETS).
            const drill = principal("drill", {
                application: "The platform's backup drill: lists and reads backups, nothing else",
                key: "platform backup drill (read only)",
                policy: "The backup drill may list and read objects in the backup bucket's project (the bucket policy narrows it to that bucket)",
                permissionSets: DRILL_PERMISSION_SETS,
            });
            const drillKey = drill.key;
            this.drillKey = pulumi.secret(pulumi.all([drillKey.accessKey, drillKey.secretKey]).apply(([accessKey, secretKey]) => ({ accessKey, secretKey })));

            const administrators = [...args.administrators!];
            const policyDeps: pulumi.Resource[] = [
                this.hostPolicy,
                new scaleway.object.BucketPolicy(
                    `${name}-policy`,
                    {
                        bucket: bucket.name,
                        region,
                        policy: pulumi
                            .all([bucket.name, application.id, drill.application.id])
                            .apply(([b, id, drillId]) => JSON.stringify(backupBucketPolicy(b, id, administrators, drillId))),
                    },
                    { parent: this },
                ),
            ];

            const settings = bucket.name.apply((b) =>
                renderBackupSettings({
                    apps: args.apps,
                    recipient: { key: s.publicKey! },
                    destination: { kind: "s3", endpoint, bucket: b, region, credentialsFile: BACKUP_CREDENTIALS_FILE },
                    signingKeyFile: BACKUP_SIGNING_KEY_FILE,
                    heartbeatUrl: s.heartbeatUrl,
                    database: args.database,
                }),
            );
            const script = readHostScript("backup.sh");
            const install = pulumi.interpolate`set -eu
umask 077
mkdir -p ${shellQuote(path.posix.dirname(BACKUP_SCRIPT_PATH))} ${shellQuote(path.posix.dirname(BACKUP_SETTINGS_FILE))}
# The host's S3 key pair (the first line) and its signing key (the PEM after it) arrive on stdin
# (secret) and go straight into 0600 files.
cat > ${shellQuote(BACKUP_CREDENTIALS_FILE + ".stdin")}
head -n 1 ${shellQuote(BACKUP_CREDENTIALS_FILE + ".stdin")} > ${shellQuote(BACKUP_CREDENTIALS_FILE + ".new")}
tail -n +2 ${shellQuote(BACKUP_CREDENTIALS_FILE + ".stdin")} > ${shellQuote(BACKUP_SIGNING_KEY_FILE + ".new")}
rm -f ${shellQuote(BACKUP_CREDENTIALS_FILE + ".stdin")}
[ -s ${shellQuote(BACKUP_CREDENTIALS_FILE + ".new")} ] || { echo "backups: no credentials on stdin" >&2; exit 1; }
openssl pkey -in ${shellQuote(BACKUP_SIGNING_KEY_FILE + ".new")} -noout 2>/dev/null || { echo "backups: no signing key on stdin (after the credentials line)" >&2; exit 1; }
mv -f ${shellQuote(BACKUP_CREDENTIALS_FILE + ".new")} ${shellQuote(BACKUP_CREDENTIALS_FILE)}
mv -f ${shellQuote(BACKUP_SIGNING_KEY_FILE + ".new")} ${shellQuote(BACKUP_SIGNING_KEY_FILE)}
${heredoc(BACKUP_SCRIPT_PATH, script, "0755")}
${settings.apply((text) => heredoc(BACKUP_SETTINGS_FILE, text, "0600"))}
command -v age >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq age; }
${heredoc(BACKUP_CRON_FILE, renderBackupCron(s.schedule), "0644")}
# One backup now: a broken key, bucket or policy fails this deployment instead of a night. A new key
# or policy can take minutes to reach Object Storage: a refused upload is retried for a bounded time.
${firstBackupEnvironment()} sh ${shellQuote(BACKUP_SCRIPT_PATH)} ${shellQuote(BACKUP_SETTINGS_FILE)}
`;
            // An API key without its secret (an imported one) gives empty stdin: the command then fails, saying so.
            const credentials = pulumi.secret(pulumi.all([this.hostKey.accessKey, this.hostKey.secretKey]).apply(([ak, sk]) => (ak && sk ? renderCurlCredentials(ak, sk) + signingKeyPem(signingKey) : "")));
            this.schedule = args.host.runCommand(
                `${name}-schedule`,
                {
                    create: install,
                    // An update, not a replace: a replaced command's delete would run last and remove the new cron file.
                    update: install,
                    stdin: credentials,
                    delete: `rm -f ${shellQuote(BACKUP_CRON_FILE)} ${shellQuote(BACKUP_CREDENTIALS_FILE)} ${shellQuote(BACKUP_SIGNING_KEY_FILE)}`,
                },
                { parent: this, dependsOn: [...(args.dependsOn ?? []), ...policyDeps, ...(lock ? [lock] : [])] },
            );
            this.bucket = bucket.name;
            this.endpoint = pulumi.output(endpoint);
        } else {
            const paths = localBackupPaths(args.localDir ?? ".platform/local");
            const settings = renderBackupSettings({
                apps: args.apps,
                recipient: s.publicKey ? { key: s.publicKey } : { file: paths.recipients },
                destination: { kind: "directory", directory: paths.directory },
                signingKeyFile: paths.signingKey,
                heartbeatUrl: s.heartbeatUrl,
            });
            const scriptPath = hostScriptPath("backup.sh");
            const settingsFile = path.join(path.dirname(paths.directory), "backup.env");
            const run = [
                "set -eu",
                "umask 077",
                `if ! command -v age >/dev/null 2>&1; then echo "backups: age is not installed, so the local stack takes no backup (apt-get install age, or brew install age; then pulumi up)" >&2; exit 0; fi`,
                `if ! openssl genpkey -algorithm ed25519 -out /dev/null >/dev/null 2>&1; then echo "backups: openssl 3 (with Ed25519) is not installed, so the local stack takes no backup: its backups are signed (apt-get install openssl, or brew install openssl@3; then pulumi up)" >&2; exit 0; fi`,
                `mkdir -p ${shellQuote(paths.directory)}`,
                ...(s.publicKey ? [] : [`[ -s ${shellQuote(paths.identity)} ] || age-keygen -o ${shellQuote(paths.identity)} 2>/dev/null`, `age-keygen -y ${shellQuote(paths.identity)} > ${shellQuote(paths.recipients)}`]),
                // The signing key: platform:backupSigningKey on stdin when set, else one made here once.
                // Its public half is what this machine's restore trusts besides the stack file's pins.
                s.signingKey
                    ? `cat > ${shellQuote(paths.signingKey + ".new")} && mv -f ${shellQuote(paths.signingKey + ".new")} ${shellQuote(paths.signingKey)}`
                    : `[ -s ${shellQuote(paths.signingKey)} ] || openssl genpkey -algorithm ed25519 -out ${shellQuote(paths.signingKey)}`,
                `printf 'ed25519:%s\n' "$(openssl pkey -in ${shellQuote(paths.signingKey)} -pubout -outform DER | tail -c 32 | base64 | tr -d '\n')" > ${shellQuote(paths.signingPublicKey)}`,
                heredoc(settingsFile, settings, "0600"),
                // A laptop's failed backup is reported but does not stop the local platform from coming up.
                `sh ${shellQuote(scriptPath)} ${shellQuote(settingsFile)} || echo "backups: the local backup failed (see above); the platform runs without it" >&2`,
            ].join("\n");
            // Whether age is here is part of the command's inputs: installing it later makes the next
            // `pulumi up` run this again (make the key pair, take the backup), as the message above says.
            const triggers = [`age ${localCommandsPresent(["age", "age-keygen"]) ? "present" : "missing"}`, `openssl ${localCommandsPresent(["openssl"]) ? "present" : "missing"}`];
            const stdin = s.signingKey ? pulumi.secret(signingKeyPem(s.signingKey)) : undefined;
            this.schedule = args.host.runCommand(`${name}-now`, { create: run, update: run, delete: "true", triggers, stdin }, { parent: this, dependsOn: [...(args.dependsOn ?? [])] });
            this.bucket = pulumi.output(paths.directory);
            this.endpoint = pulumi.output(`file://${paths.directory}`);
        }
        this.registerOutputs({ bucket: this.bucket, endpoint: this.endpoint, drillKey: this.drillKey });
    }
}
