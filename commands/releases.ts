// npm run releases -- --stack S APP
// The releases APP has run on the stack, newest first: each with the date and git commit that recorded
// it in Pulumi.<stack>.yaml (the deploy workflow's "Deploy APP RELEASE to STACK" commits, a rollback's,
// or a hand edit), and whether its images are still cached on the host (a rollback to it needs no pull).
import { RELEASES_USAGE, ReleaseRecord, parseReleasesArgs, releaseHistory, renderReleases } from "../render/day2";
import { imagesPresent } from "../io/hostDocker";
import { HostShell } from "../io/stackHost";
import { Day2Deps, currentRelease, knownApps, onStackHost, releaseImages, runCommand } from "./day2Cli";

/** "cached", "gone", or "frontend cached, backend gone", per release. */
export function cacheState(shell: HostShell, app: string, release: string): { text: string; allPresent: boolean; missing: string[] } {
    const images = releaseImages(app, release);
    const present = imagesPresent(shell, [images.frontend, images.backend]);
    const missing = [images.frontend, images.backend].filter((r) => !present[r]);
    const text = missing.length === 0 ? "cached" : missing.length === 2 ? "gone" : `${present[images.frontend] ? "backend" : "frontend"} gone`;
    return { text, allPresent: missing.length === 0, missing };
}

export function history(deps: Day2Deps, stack: string, app: string): ReleaseRecord[] {
    return releaseHistory(deps.history(stack), app);
}

export async function main(argv: string[], deps: Day2Deps): Promise<number> {
    const args = parseReleasesArgs(argv, knownApps());
    if (args === "help") {
        deps.out(RELEASES_USAGE + "\n");
        return 0;
    }
    const records = history(deps, args.stack, args.app);
    const current = currentRelease(deps, args.stack, args.app);
    return onStackHost(deps, args.stack, args.host, async (shell) => {
        deps.out(renderReleases(args.app, args.stack, records, current, (release) => cacheState(shell, args.app, release).text));
        return 0;
    });
}

if (require.main === module) runCommand("releases", main);
