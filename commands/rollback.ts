// npm run rollback -- --stack S APP [VERSION] [--pull] [--dispatch | --local] [--dry-run]
// Goes back to VERSION, by default the release recorded before the current one (npm run releases),
// through the same recorded, health-gated path as a deploy:
//   --local (the local stack's default): `pulumi config set --type string --path apps.APP VERSION`, a
//     commit of Pulumi.<stack>.yaml on main ("Roll back APP to VERSION on STACK"), then `pulumi up`,
//     whose new containers must turn healthy before the edge switches (the old release keeps serving
//     otherwise);
//   --dispatch (every other stack's default): `gh workflow run deploy.yml -f app=APP -f release=VERSION`,
//     the deploy workflow's own record-then-up, as an app repository's release call does.
// It refuses a release whose images are no longer on the host (the weekly prune removed them) unless
// --pull says to pull them again (from the same registry, with the same credentials).
import { ROLLBACK_USAGE, parseRollbackArgs, previousRelease, releaseHistory, rollbackCommitMessage } from "../render/day2";
import { REPO_ROOT, pulumi, pulumiEnv, run, runAttached } from "../io/stackHost";
import { cacheState } from "./releases";
import { Day2Deps, currentRelease, knownApps, runCommand, withStackHosts } from "./day2Cli";

export async function main(argv: string[], deps: Day2Deps): Promise<number> {
    const args = parseRollbackArgs(argv, knownApps());
    if (args === "help") {
        deps.out(ROLLBACK_USAGE + "\n");
        return 0;
    }
    const say = (l: string) => deps.out(`rollback: ${l}\n`);
    const current = currentRelease(deps, args.stack, args.app);
    if (current === undefined) throw new Error(`${args.app} does not run on ${args.stack} (not in its outputs nor in Pulumi.${args.stack}.yaml)`);
    const history = releaseHistory(deps.history(args.stack), args.app);
    const target = args.version ?? previousRelease(history, current).release;
    if (target === current) throw new Error(`${args.app} already runs ${target} on ${args.stack}`);
    const recorded = history.find((r) => r.release === target);
    say(`${args.app} on ${args.stack}: ${current} -> ${target}${recorded ? ` (recorded ${recorded.date.slice(0, 10)} in ${recorded.commit.slice(0, 12)})` : " (never recorded on this stack before)"}`);

    // The images must still be on every host, or the rollback pulls (and needs the registry).
    await withStackHosts(deps, args.stack, (hosts) => {
        for (const shell of hosts) {
            const cache = cacheState(shell, args.app, target);
            if (!cache.allPresent) {
                if (!args.pull) throw new Error(`the images of ${args.app} ${target} are no longer on ${shell.name} (${cache.missing.join(", ")}): pass --pull to pull them again from the registry`);
                say(`${shell.name}: ${cache.missing.join(", ")} will be pulled again (--pull)`);
            } else say(`${shell.name}: images of ${target} cached, no pull needed`);
        }
    });

    const via = args.via ?? (args.stack === "local" ? "local" : "dispatch");
    const repo = deps.repo ?? REPO_ROOT;
    if (via === "dispatch") {
        const words = ["workflow", "run", "deploy.yml", "-f", `app=${args.app}`, "-f", `release=${target}`];
        if (args.dryRun) {
            say(`dry run: would run gh ${words.join(" ")}`);
            return 0;
        }
        const r = run("gh", words, { env: deps.env, cwd: repo });
        if (r.status !== 0) throw new Error(`gh workflow run failed: ${r.stderr.trim()}`);
        say(`dispatched the deploy workflow: it records ${args.app} ${target} on main and runs pulumi up (gh run watch to follow it)`);
        return 0;
    }

    const file = `Pulumi.${args.stack}.yaml`;
    const git = (...a: string[]) => run("git", a, { cwd: repo, env: deps.env });
    const branch = git("rev-parse", "--abbrev-ref", "HEAD");
    if (branch.status !== 0) throw new Error(`${repo} is not a git checkout: ${branch.stderr.trim()}`);
    if (branch.stdout.trim() !== "main") throw new Error(`releases are recorded on main, and this checkout is on ${branch.stdout.trim()}: switch to main first`);
    if (git("diff", "--quiet", "HEAD", "--", file).status !== 0) throw new Error(`${file} has uncommitted changes: commit or discard them first, so the rollback's commit holds only the rollback`);
    const message = rollbackCommitMessage(args.app, target, args.stack, current);
    if (args.dryRun) {
        say(`dry run: would run pulumi config set --type string --path apps.${args.app} ${target}, commit "${message}" on main, then pulumi up --stack ${args.stack}`);
        return 0;
    }
    const set = pulumi(args.stack, ["config", "set", "--type", "string", "--path", `apps.${args.app}`, target], deps.env, repo);
    if (set.status !== 0) throw new Error(`pulumi config set failed: ${set.stderr.trim()}`);
    const add = git("add", "--", file);
    const commit = add.status === 0 ? git("commit", "--quiet", "-m", message, "--", file) : add;
    if (commit.status !== 0) throw new Error(`could not commit ${file}: ${commit.stderr.trim()}`);
    const sha = git("rev-parse", "HEAD").stdout.trim();
    say(`recorded on main: ${sha.slice(0, 12)} ${message}`);
    const up = deps.pulumiAttached ?? ((stack: string, a: readonly string[]) => runAttached("pulumi", [...a, "--stack", stack], { env: pulumiEnv(stack, deps.env), cwd: repo }));
    const code = await up(args.stack, ["up", "--yes", "--non-interactive", "--diff"]);
    if (code !== 0) {
        say(`pulumi up failed (exit ${code}): the new containers did not turn healthy or the update stopped; the release that served before still serves. The commit stays recorded: fix and run pulumi up, or roll forward.`);
        return code;
    }
    say(`${args.app} runs ${target} on ${args.stack}`);
    return 0;
}

if (require.main === module) runCommand("rollback", main);
