// Validates an app release request from CI (`npx ts-node commands/check-release.ts <app> <release>`)
// with the same rules as the program, before anything is recorded or deployed.
import { catalog } from "../apps";
import { isRelease } from "../render/values";

export function checkRelease(app: string, release: string): string[] {
    const problems: string[] = [];
    if (!Object.prototype.hasOwnProperty.call(catalog, app)) problems.push(`app "${app}" is not in the catalog (known: ${Object.keys(catalog).join(", ")})`);
    if (!isRelease(release)) problems.push(`release "${release}" is not an image tag (1.4.3) or a digest (sha256:<64 hex>)`);
    return problems;
}

if (require.main === module) {
    const [app = "", release = ""] = process.argv.slice(2);
    const problems = checkRelease(app, release);
    if (problems.length > 0) {
        for (const p of problems) console.error(`check-release: ${p}`);
        process.exit(1);
    }
    console.log(`check-release: ${app} ${release} is valid`);
}
