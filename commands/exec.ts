// npm run exec -- --stack S APP -- CMD [ARG…]
// Runs CMD in a fresh one-off container of the app's current backend release: the backend's image,
// user, memory limit and hardening, on its networks, with its DATABASE_URL (hostScripts/one-off.sh),
// removed afterwards. For consoles and maintenance. The DATABASE_URL never appears on a command line
// or in a log: the host's shell reads it from the backend's config and hands docker its name only.
import { EXEC_USAGE, parseExecArgs } from "../render/day2";
import { appContainers, oneOffCommand, pickCurrent } from "../io/hostDocker";
import { Day2Deps, currentRelease, knownApps, onStackHost, runCommand } from "./day2Cli";

export async function main(argv: string[], deps: Day2Deps, o: { tty?: boolean; onStdout?: (chunk: string) => void } = {}): Promise<number> {
    const args = parseExecArgs(argv, knownApps());
    if (args === "help") {
        deps.out(EXEC_USAGE + "\n");
        return 0;
    }
    const release = currentRelease(deps, args.stack, args.app);
    return onStackHost(deps, args.stack, args.host, async (shell) => {
        const backend = pickCurrent(appContainers(shell, args.app, "backend", deps.extraLabel), release);
        if (backend === undefined) throw new Error(`no running backend container of ${args.app} on ${shell.name}`);
        const tty = o.tty ?? (process.stdin.isTTY === true && process.stdout.isTTY === true);
        deps.err(`exec: ${args.app} backend ${backend.release || "?"} (${backend.name}) on ${shell.describe}\n`);
        return await shell.attach(oneOffCommand(backend.id, args.command, tty), { tty, onStdout: o.onStdout });
    });
}

if (require.main === module) runCommand("exec", (argv, deps) => main(argv, deps));
