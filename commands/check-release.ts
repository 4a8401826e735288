// Validates an app release request from CI (`npm run check:release -- <app> <release>`)
// with the same rules as the program, before anything is recorded or deployed.
import { catalog } from "../apps";
import { isRelease } from "../render/values";

export function checkRelease(app: string, release: string): string[] {
    const problems: string[] = [];
    if (!Object.prototype.hasOwnProperty.call(catalog, app)) problems.push(`app "${app}" is not in the catalog (known: ${Object.keys(catalog).join(", ")})`);
    if (!isRelease(release)) problems.push(`release "${release}" is not an image tag (1.4.3) or a digest (sha256:<64 hex>)`);
    return problems;
}

export const CHECK_RELEASE_USAGE = "usage: npm run check:release -- <app> <release>   (exit 0 if the catalog has <app> and <release> is an image tag or sha256 digest)";

if (require.main === module) {
    const argv = process.argv.slice(2);
    if (argv.includes("--help") || argv.includes("-h")) {
        console.log(CHECK_RELEASE_USAGE);
        process.exit(0);
    }
    const flag = argv.find((a) => a.startsWith("-"));
    if (flag !== undefined || argv.length !== 2) {
        console.error(`check-release: ${flag !== undefined ? `unknown argument ${JSON.stringify(flag)}` : `expected <app> <release>, got ${argv.length} argument(s)`}\n${CHECK_RELEASE_USAGE}`);
        process.exit(1);
    }
    const [app = "", release = ""] = argv;
    const problems = checkRelease(app, release);
    if (problems.length > 0) {
        for (const p of problems) console.error(`check-release: ${p}`);
        process.exit(1);
    }
    console.log(`check-release: ${app} ${release} is valid`);
}
