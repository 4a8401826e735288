// npm run logs -- --stack S APP [frontend|backend] [--since 10m] [--tail N] [--follow] [--host N]
// The logs of the app's current containers, found by their labels (platform.app, platform.role), so
// no container name is needed: during a rollout the one of the release the stack runs is chosen.
import { LOGS_USAGE, parseLogsArgs } from "../render/day2";
import { appContainers, logsCommand, pickCurrent } from "../io/hostDocker";
import { Day2Deps, currentRelease, knownApps, onStackHost, runCommand } from "./day2Cli";

export async function main(argv: string[], deps: Day2Deps): Promise<number> {
    const args = parseLogsArgs(argv, knownApps());
    if (args === "help") {
        deps.out(LOGS_USAGE + "\n");
        return 0;
    }
    const release = currentRelease(deps, args.stack, args.app);
    return onStackHost(deps, args.stack, args.host, async (shell) => {
        const chosen = args.roles.map((role) => ({ role, c: pickCurrent(appContainers(shell, args.app, role, deps.extraLabel), release) }));
        const missing = chosen.filter((x) => x.c === undefined).map((x) => x.role);
        if (missing.length === chosen.length) throw new Error(`no running ${missing.join(" or ")} container of ${args.app} on ${shell.name}`);
        const prefix = chosen.length > 1;
        const runs = chosen
            .filter((x) => x.c !== undefined)
            .map(({ role, c }) => {
                let pending = "";
                const onStdout = (chunk: string) => {
                    if (!prefix) return deps.out(chunk);
                    pending += chunk;
                    const lines = pending.split("\n");
                    pending = lines.pop()!;
                    for (const l of lines) deps.out(`${role.padEnd(8)} | ${l}\n`);
                };
                return shell.attach(logsCommand(c!.id, args), { onStdout }).then((code) => {
                    if (pending !== "") deps.out(`${role.padEnd(8)} | ${pending}\n`);
                    return code;
                });
            });
        for (const role of missing) deps.err(`logs: no running ${role} container of ${args.app}\n`);
        const codes = await Promise.all(runs);
        return codes.find((c) => c !== 0) ?? 0;
    });
}

if (require.main === module) runCommand("logs", main);
