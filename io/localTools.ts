// Which tools the machine running Pulumi has: the local stack runs its host commands here.
import { spawnSync } from "child_process";

/** Whether every named command is on this machine's PATH (`command -v`, as the host commands look them up). */
export function localCommandsPresent(names: readonly string[]): boolean {
    for (const name of names) if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`${JSON.stringify(name)} is not a command name`);
    const r = spawnSync("/bin/sh", ["-c", names.map((n) => `command -v ${n} >/dev/null 2>&1`).join(" && ")], { stdio: "ignore" });
    return r.status === 0;
}
