// npm run status -- --stack S [--json]
// One screen: per app, the release and image digest it serves, container health and restarts, the
// age of its newest backup (the bucket with your SCW_* keys, the local stack's directory, or else the
// host's backup log) and the last drill (the backup-drill workflow, through the GitHub CLI when it is
// logged in); per host, the certificate's expiry, disk and memory use and the nginx generation
// loaded, with every alert the host's checker (hostScripts/check-alerts.sh) raises. Exit 0 when
// healthy, 1 otherwise: it can run in CI or cron.
import { catalog } from "../apps";
import { AppStatusInput, DrillStatus, HostStatusInput, STATUS_USAGE, StatusInput, currentContainer, parseStatusArgs, renderStatus } from "../render/day2";
import { isBucketName, isS3Endpoint, regionOfEndpoint } from "../render/backup";
import { BackupTrust, DirectoryBackupStore, S3BackupStore } from "../io/restore";
import { stackSigningKeys } from "../io/backupTrust";
import { S3Client } from "../io/s3";
import { hostFacts, imageDigests } from "../io/hostDocker";
import { REPO_ROOT, run } from "../io/stackHost";
import { Day2Deps, LOCAL_DIR, runCommand, withStackHosts } from "./day2Cli";
import * as path from "path";

async function newestBackup(stack: string, app: string, outputs: Record<string, any>, deps: Day2Deps, hostLog?: Date): Promise<AppStatusInput["backup"]> {
    try {
        // The newest backup a restore would trust: a planted "newer" one must not make the status look fresh.
        const trust: BackupTrust = { keys: stackSigningKeys(stack, deps.stackYaml(stack), LOCAL_DIR) };
        if (stack === "local") {
            const dir = String(outputs.backupBucket ?? path.join(LOCAL_DIR, "backups"));
            const refs = await new DirectoryBackupStore(dir, trust).list(app);
            return { newest: refs[0]?.createdAt, source: dir };
        }
        const bucket = String(outputs.backupBucket ?? "");
        const endpoint = String(outputs.backupEndpoint ?? "");
        const region = regionOfEndpoint(endpoint);
        if (deps.env.SCW_ACCESS_KEY && deps.env.SCW_SECRET_KEY && isBucketName(bucket) && isS3Endpoint(endpoint) && region) {
            const store = new S3BackupStore(new S3Client({ endpoint, region, bucket, accessKey: deps.env.SCW_ACCESS_KEY, secretKey: deps.env.SCW_SECRET_KEY }), trust);
            const refs = await store.list(app);
            return { newest: refs[0]?.createdAt, source: `bucket ${bucket}` };
        }
        if (hostLog !== undefined) return { newest: hostLog, source: "host 0's backup log (set SCW_ACCESS_KEY/SCW_SECRET_KEY to read the bucket)" };
        return { error: "set SCW_ACCESS_KEY/SCW_SECRET_KEY to read the bucket" };
    } catch (e) {
        return { error: (e as Error).message };
    }
}

/** The newest backup-drill workflow run, through `gh` (unknown when it is not installed or logged in). */
export function lastDrill(stack: string, env: NodeJS.ProcessEnv): DrillStatus {
    if (stack === "local") return { result: "n/a", source: "the drill runs for prod, in GitHub" };
    try {
        const r = run("gh", ["run", "list", "--workflow", "backup-drill.yml", "--limit", "1", "--json", "conclusion,status,createdAt"], { env, cwd: REPO_ROOT });
        if (r.status !== 0) return { result: "unknown", source: `gh run list: ${r.stderr.trim().split("\n")[0]}` };
        const [runInfo] = JSON.parse(r.stdout) as { conclusion?: string; status?: string; createdAt?: string }[];
        if (runInfo === undefined) return { result: "unknown", source: "no backup-drill run yet" };
        return { result: runInfo.conclusion || runInfo.status || "unknown", at: runInfo.createdAt ? new Date(runInfo.createdAt) : undefined, source: "GitHub backup-drill workflow" };
    } catch (e) {
        return { result: "unknown", source: (e as Error).message };
    }
}

export async function main(argv: string[], deps: Day2Deps): Promise<number> {
    const args = parseStatusArgs(argv);
    if (args === "help") {
        deps.out(STATUS_USAGE + "\n");
        return 0;
    }
    const outputs = deps.outputs(args.stack);
    const apps = Object.entries((outputs.apps ?? {}) as Record<string, { release?: string }>).filter(([name]) => /^[a-z][a-z0-9-]{0,30}$/.test(name));
    return withStackHosts(deps, args.stack, async (shells) => {
        const settings = deps.factsSettings(args.stack, outputs);
        const hosts: HostStatusInput[] = shells.map((h) => ({ name: h.name, ...hostFacts(h, settings) }));
        const appInputs: AppStatusInput[] = [];
        for (const [app, info] of apps) {
            const release = String(info.release ?? "?");
            const digests: AppStatusInput["digests"] = {};
            const first = hosts[0];
            for (const role of ["frontend", "backend"] as const) {
                const c = first?.facts === undefined ? undefined : currentContainer(first.facts.containers, app, role, release);
                if (c !== undefined && /^[0-9a-f]{12,64}$/.test(c.image)) digests[role] = imageDigests(shells[0], c.image);
            }
            const hasDatabase = catalog[app]?.database === true;
            appInputs.push({ app, release, digests, hasDatabase, backup: hasDatabase ? await newestBackup(args.stack, app, outputs, deps, first?.facts?.backup?.lastOk) : undefined });
        }
        const input: StatusInput = { stack: args.stack, now: deps.now(), apps: appInputs, hosts, drill: lastDrill(args.stack, deps.env) };
        const report = renderStatus(input);
        deps.out(args.json ? JSON.stringify({ healthy: report.healthy, problems: report.problems, apps: appInputs, hosts }, null, 2) + "\n" : report.text);
        return report.healthy ? 0 : 1;
    });
}

if (require.main === module) runCommand("status", main);
