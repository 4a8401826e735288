// The shell scripts that run on the hosts (and that the tests run as they are). Components read them
// here to hand them to the host over the command channel; nothing else in this folder is TypeScript.
import * as fs from "fs";
import * as path from "path";

/** The project's root: the nearest folder above this file that holds package.json (the sources and a build of them both sit below it). */
function projectRoot(from: string): string {
    for (let dir = from; ; dir = path.dirname(dir)) {
        if (fs.existsSync(path.join(dir, "package.json"))) return dir;
        if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
    }
}

/**
 * The project's root (Pulumi.yaml, the stack files, the shell scripts), the same from the sources and from
 * their build in dist/: files that are not TypeScript are read from here, never relative to `__dirname`.
 */
export const PROJECT_ROOT = projectRoot(__dirname);

/** This folder in the sources, also when the code runs from a build elsewhere under the root. */
export const HOST_SCRIPTS_DIR = path.join(PROJECT_ROOT, "hostScripts");

/** Path of a host script, the same file the tests run. */
export function hostScriptPath(name: string): string {
    if (!/^[a-z][a-z0-9-]*\.sh$/.test(name)) throw new Error(`${JSON.stringify(name)} is not a host script name`);
    return path.join(HOST_SCRIPTS_DIR, name);
}

/** Text of a host script. */
export function readHostScript(name: string): string {
    return fs.readFileSync(hostScriptPath(name), "utf8");
}
